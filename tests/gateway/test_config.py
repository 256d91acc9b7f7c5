"""Config model, loader and ``check-config``: defaults, every problem with its key path, secrets."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from gateway.cli import check_config
from gateway.config.load import config_from_dict, format_key_path, load_config, validate_config
from gateway.config.mmsc import MmscConfig
from gateway.config.model import GatewayConfig
from gateway.config.pools import PoolConfig, PoolSender
from gateway.config.values import HostPort
from gateway.errors import ConfigError
from protocol.versions import DEFAULT_VERSION

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "gateway.toml"

MINIMAL = """
[[mmsc]]
name = "a"
url = "http://127.0.0.1:9090/mm7"
"""


def write(tmp_path: Path, text: str, name: str = "gw.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(exc: ConfigError) -> dict[str, str]:
    return {p.key_path: p.message for p in exc.problems}


def base(**mmsc: Any) -> dict[str, Any]:
    return {"mmsc": [{"name": "a", "url": "http://127.0.0.1:9090/mm7", **mmsc}]}


# -- defaults ---------------------------------------------------------------------------------
def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.gateway.data_dir == Path("./data")
    assert config.gateway.public_url == "http://127.0.0.1:8080"
    assert config.gateway.media_url_ttl_seconds == 604_800
    assert config.gateway.max_queue_depth == 100_000
    assert config.gateway.max_body_bytes == 5 * 1024 * 1024
    assert config.gateway.signing_key is None
    assert config.listen.api == HostPort("127.0.0.1", 8080)
    assert config.listen.mm7 == HostPort("127.0.0.1", 8081)
    assert config.listen.ops == HostPort("127.0.0.1", 9100)
    assert (config.logging.level, config.logging.format, config.logging.mask_numbers) == (
        "info",
        "auto",
        True,
    )
    mmsc = config.mmsc[0]
    assert mmsc.version == DEFAULT_VERSION
    assert (mmsc.tps, mmsc.burst, mmsc.effective_burst) == (10.0, None, 10.0)
    assert (mmsc.max_in_flight, mmsc.max_message_bytes, mmsc.max_recipients_per_submit) == (
        4,
        614_400,
        1,
    )
    assert mmsc.retry.max_attempts == 10
    assert mmsc.retry.default_validity_seconds == 86_400
    assert mmsc.transfer_encoding == "binary"
    assert mmsc.media_policy == "adapt"
    assert config.webhooks.max_attempts == 12
    assert config.optout.stop_keywords[:2] == ("STOP", "STOPALL")
    assert config.optout.start_keywords == ("START", "UNSTOP")
    assert config.api_keys == ()


def test_effective_burst_is_at_least_one_and_tps_zero_is_allowed() -> None:
    slow = config_from_dict(base(tps=0.5), environ={}).mmsc[0]
    assert slow.effective_burst == 1.0
    unlimited = config_from_dict(base(tps=0), environ={}).mmsc[0]
    assert unlimited.tps == 0.0
    explicit = config_from_dict(base(tps=5, burst=20), environ={}).mmsc[0]
    assert explicit.effective_burst == 20.0


def test_models_are_frozen() -> None:
    config = config_from_dict(base(), environ={})
    with pytest.raises(ValueError, match="frozen"):
        config.mmsc[0].tps = 5  # type: ignore[misc]


# -- the documented example --------------------------------------------------------------------
def test_example_config_is_valid_and_talks_to_the_mock() -> None:
    config = load_config(EXAMPLE, environ={})
    assert [m.name for m in config.mmsc] == ["mock"]
    assert config.mmsc[0].url == "http://127.0.0.1:9090/mm7"
    assert [k.name for k in config.api_keys] == ["demo"]
    assert config.api_keys[0].key.get_secret_value() == "demo-key"
    assert config.gateway.data_dir == Path("./data")


def _keys(model: type[Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        # An optional section (``sms: SmsSection | None``) documents the section's keys.
        members = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
        if len(members) == 1 and hasattr(members[0], "model_fields"):
            annotation = members[0]
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            out |= _keys(annotation, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def test_example_documents_every_key_of_the_model() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    # Commented-out keys count as documented: uncomment every "# key = value" line (and
    # "# [section]" headers of optional sections).
    sections = set(GatewayConfig.model_fields)

    def documented_line(line: str) -> bool:
        bare = line.lstrip("# ")
        header = bare.startswith("[") and bare.endswith("]") and bare[1:-1] in sections
        return header or bare.split(" = ")[0].isidentifier()

    uncommented = "\n".join(
        line.lstrip("# ") if documented_line(line) else line for line in text.splitlines()
    )
    doc = tomllib.loads(uncommented)

    def flatten(table: dict[str, Any], prefix: str = "") -> set[str]:
        keys: set[str] = set()
        for key, value in table.items():
            if isinstance(value, dict) and key != "status_overrides":
                keys |= flatten(value, f"{prefix}{key}.")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                keys |= flatten(value[0], f"{prefix}{key}.")
            else:
                keys.add(prefix + key)
        return keys

    documented = flatten(doc)
    expected = _keys(GatewayConfig) - {"api_keys", "mmsc"}
    expected |= {
        f"api_keys.{k}"
        for k in _keys(GatewayConfig.model_fields["api_keys"].annotation.__args__[0])
    }  # type: ignore[union-attr]
    expected |= {f"mmsc.{k}" for k in _keys(MmscConfig)}
    expected -= {"pool"}
    expected |= {f"pool.{k}" for k in _keys(PoolConfig) - {"sender"}}
    expected |= {f"pool.sender.{k}" for k in _keys(PoolSender)}
    assert expected - documented == set()
    assert documented - expected == set()


# -- problems and key paths -----------------------------------------------------------------
def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[gateway]
data_dir = "./d"
bogus = 1
[listen]
api = "nohost"
[logging]
format = "fancy"
[[mmsc]]
name = "Bad Name"
url = "ftp://x"
tps = -1
version = "REL-9"
prefixes = ["+1", "abc"]
status_overrides = { "4005" = "retry_slow_down", "3001" = "explode" }
[mmsc.retry]
jitter = 2.0
[[mmsc]]
name = "b"
url = "http://x/mm7"
max_in_flight = 0
tps = "10"
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    found = problems(info.value)
    assert found == {
        "gateway.bogus": "unknown key",
        "listen.api": "must be HOST:PORT (e.g. 127.0.0.1:8080), got 'nohost'",
        "logging.format": "must be 'auto', 'json' or 'console'",
        "mmsc[0].name": "must be 1-64 of a-z, 0-9, _ and -",
        "mmsc[0].url": "must be an http:// or https:// URL with a host",
        "mmsc[0].tps": "must be >= 0",
        "mmsc[0].version": found["mmsc[0].version"],
        "mmsc[0].prefixes[1]": "must be digits, optionally after +",
        "mmsc[0].status_overrides.3001": "must be 'retry', 'retry_slow_down' or 'fail'",
        "mmsc[0].retry.jitter": "must be <= 1",
        "mmsc[1].max_in_flight": "must be >= 1",
        "mmsc[1].tps": "must be a number",
    }
    assert found["mmsc[0].version"].startswith("must be one of REL-5-MM7-1-0")
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: 12 problems: ")
    assert "\n" not in str(info.value)


def test_cross_entry_problems() -> None:
    data = {
        "api_keys": [
            {"name": "k", "key": "same-secret-value"},
            {"name": "k", "key": "same-secret-value"},
        ],
        "mmsc": [
            {"name": "a", "url": "http://h/mm7", "route_default": True},
            {"name": "a", "url": "http://h/mm7", "route_default": True},
        ],
    }
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, environ={})
    found = problems(info.value)
    assert found == {
        "mmsc[1].name": "duplicate 'a': already used by mmsc[0]",
        "mmsc[1].route_default": "only one route may be the default (mmsc[0] is)",
        "api_keys[1].name": "duplicate 'k': already used by api_keys[0]",
        "api_keys[1].key": "duplicate: already used by api_keys[0]",
    }
    assert "same-secret-value" not in str(info.value)


def test_cross_entry_problems_are_reported_alongside_field_problems() -> None:
    data = {
        "mmsc": [
            {"name": "a", "url": "http://h/mm7", "tps": -1},
            {"name": "a", "url": "http://h/mm7"},
        ]
    }
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, environ={})
    assert problems(info.value) == {
        "mmsc[0].tps": "must be >= 0",
        "mmsc[1].name": "duplicate 'a': already used by mmsc[0]",
    }


def test_at_least_one_mmsc_is_required() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({}, environ={})
    assert problems(info.value) == {"mmsc": "required key is missing"}
    with pytest.raises(ConfigError) as info:
        config_from_dict({"mmsc": []}, environ={})
    assert problems(info.value) == {"mmsc": "must have at least 1 entries"}


@pytest.mark.parametrize(
    ("mmsc", "path", "message"),
    [
        (
            {"retry": {"initial_backoff_seconds": 10.0, "max_backoff_seconds": 5.0}},
            "mmsc[0].retry.max_backoff_seconds",
            "must be >= initial_backoff_seconds",
        ),
        ({"tls_key_file": "KEY"}, "mmsc[0].tls_key_file", "needs tls_cert_file"),
        (
            {"inbound_username": "u"},
            "mmsc[0].inbound_password",
            "required: inbound_username and inbound_password go together",
        ),
        (
            {"tls_ca_file": "/nonexistent/ca.pem"},
            "mmsc[0].tls_ca_file",
            "file not found: /nonexistent/ca.pem",
        ),
        (
            {"inbound_allow_ips": ["10.0.0.0/8", "nope"]},
            "mmsc[0].inbound_allow_ips[1]",
            "'nope' is not an IP address or CIDR network",
        ),
        (
            {"status_overrides": {"40x5": "retry"}},
            "mmsc[0].status_overrides.40x5",
            "must be a 4-digit MM7 status code",
        ),
        (
            {"transfer_encoding": "7bit"},
            "mmsc[0].transfer_encoding",
            "must be 'binary' or 'base64'",
        ),
        ({"per_sender_tps": 0}, "mmsc[0].per_sender_tps", "must be > 0"),
        ({"route_default": "yes"}, "mmsc[0].route_default", "must be true or false"),
        (
            {"max_recipients_per_submit": 1.5},
            "mmsc[0].max_recipients_per_submit",
            "must be an integer",
        ),
        ({"media_policy": "drop"}, "mmsc[0].media_policy", "must be 'adapt', 'link' or 'reject'"),
    ],
)
def test_single_field_problems(
    tmp_path: Path, mmsc: dict[str, Any], path: str, message: str
) -> None:
    if mmsc.get("tls_key_file") == "KEY":
        key = tmp_path / "client.key"
        key.write_text("k")
        mmsc = {"tls_key_file": str(key)}
    with pytest.raises(ConfigError) as info:
        config_from_dict(base(**mmsc), environ={})
    assert problems(info.value) == {path: message}


def test_tls_files_that_exist_are_accepted(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    mmsc = config_from_dict(
        base(
            url="https://mmsc.example/mm7",
            tls_ca_file=str(tmp_path / "ca.pem"),
            tls_cert_file=str(tmp_path / "cert.pem"),
            tls_key_file=str(tmp_path / "key.pem"),
        ),
        environ={},
    ).mmsc[0]
    assert mmsc.tls_ca_file == tmp_path / "ca.pem"
    assert mmsc.tls_key_file == tmp_path / "key.pem"


def test_values_are_parsed_into_useful_types() -> None:
    data = {
        "listen": {"api": "[::1]:0", "mm7": "0.0.0.0:8081", "ops": "localhost:65535"},
        "logging": {"level": "DEBUG"},
        "optout": {"stop_keywords": [" stop ", "Arret"]},
        **base(
            inbound_allow_ips=["10.1.2.3/8", "::1"],
            status_overrides={"4005": "retry_slow_down", "3001": "fail"},
            prefixes=["+1", "44"],
        ),
    }
    config = config_from_dict(data, environ={})
    assert config.listen.api == HostPort("::1", 0)
    assert str(config.listen.api) == "[::1]:0"
    assert str(config.listen.ops) == "localhost:65535"
    assert config.logging.level == "debug"
    assert config.optout.stop_keywords == ("STOP", "ARRET")
    mmsc = config.mmsc[0]
    assert [str(n) for n in mmsc.inbound_allow_ips] == ["10.0.0.0/8", "::1/128"]
    assert mmsc.status_overrides == {"4005": "retry_slow_down", "3001": "fail"}
    assert mmsc.prefixes == ("+1", "44")
    assert config.route("a") is mmsc
    with pytest.raises(KeyError):
        config.route("zzz")


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:65536", ":80", "host:port", "[::1]"])
def test_bad_listen_addresses(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"listen": {"ops": value}, **base()}, environ={})
    assert list(problems(info.value)) == ["listen.ops"]


def test_format_key_path() -> None:
    assert format_key_path(("mmsc", 0, "retry", "jitter")) == "mmsc[0].retry.jitter"
    assert format_key_path(("mmsc", 1, "status_overrides", "4005", "[key]")) == (
        "mmsc[1].status_overrides.4005"
    )
    assert format_key_path(("a", "b c")) == 'a."b c"'


# -- secrets ---------------------------------------------------------------------------------
def test_env_secrets_are_resolved_from_the_given_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + 'password = "env:MMSC_PW"\n'
        + '\n[[api_keys]]\nname = "app"\nkey = "env:APP_KEY"\n',
    )
    config = load_config(path, environ={"MMSC_PW": "pw-123", "APP_KEY": "key-456"})
    assert config.mmsc[0].password == SecretStr("pw-123")
    key = config.api_keys[0]
    assert key.key.get_secret_value() == "key-456"
    # webhook_secret defaults to the key itself
    assert key.webhook_secret is None
    assert key.webhook_signing_secret.get_secret_value() == "key-456"


def test_missing_env_var_names_the_key_and_the_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL + 'password = "env:MMSC_PW"\ninbound_username = "u"\n'
        'inbound_password = "env:IN_PW"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"IN_PW": "x"})
    assert problems(info.value) == {"mmsc[0].password": "environment variable MMSC_PW is not set"}


def test_secrets_never_print(tmp_path: Path) -> None:
    data = {
        "gateway": {"signing_key": "sign-me-secret"},
        "api_keys": [{"name": "app", "key": "api-key-secret", "webhook_secret": "hook-secret"}],
        **base(
            password="mmsc-pass-secret", inbound_username="u", inbound_password="inbound-secret"
        ),
    }
    config = config_from_dict(data, environ={})
    rendered = repr(config) + str(config) + config.model_dump_json()
    for secret in (
        "sign-me-secret",
        "api-key-secret",
        "hook-secret",
        "mmsc-pass-secret",
        "inbound-secret",
    ):
        assert secret not in rendered
    assert config.api_keys[0].webhook_signing_secret.get_secret_value() == "hook-secret"


def test_empty_api_key_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"api_keys": [{"name": "x", "key": "  "}], **base()}, environ={})
    assert problems(info.value) == {"api_keys[0].key": "must not be empty"}


# -- files -------------------------------------------------------------------------------------
def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateway]\ndata_dir = "x"\nbad line\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (problem,) = info.value.problems
    assert problem.key_path == ""
    assert problem.message.startswith("TOML syntax error: ")
    assert "line 3, column" in problem.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file: No such file"):
        load_config(tmp_path / "missing.toml", environ={})


def test_validate_config_alias_names_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^my\.toml: 1 problem: mmsc\[0\]\.tps: must be >= 0$"):
        validate_config(base(tps=-3), {}, source="my.toml")


def test_default_for_demo_builds_a_valid_config(tmp_path: Path) -> None:
    config = GatewayConfig.default_for_demo(
        tmp_path, "http://127.0.0.1:1234/mm7", mmsc={"tps": 3.0}, logging={"level": "debug"}
    )
    assert config.gateway.data_dir == tmp_path
    assert config.listen.api.port == 0
    assert config.mmsc[0].url == "http://127.0.0.1:1234/mm7"
    assert config.mmsc[0].tps == 3.0
    assert config.mmsc[0].route_default
    assert config.logging.level == "debug"
    assert config.api_keys[0].key.get_secret_value() == "demo-key"


# -- check-config --------------------------------------------------------------------------------
def run_check(path: Path) -> int:
    parser = argparse.ArgumentParser()
    check_config.add_arguments(parser)
    return check_config.run(parser.parse_args([str(path)]))


def test_check_config_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(EXAMPLE) == 0
    out, err = capsys.readouterr()
    assert out == "ok: 1 mmsc routes, 1 api keys\n"
    assert err == ""


def test_check_config_lists_each_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL + "tps = -1\nmax_in_flight = 0\nnope = 1\n")
    assert run_check(path) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: mmsc[0].tps: must be >= 0",
        f"{path}: mmsc[0].max_in_flight: must be >= 1",
        f"{path}: mmsc[0].nope: unknown key",
    ]


def test_check_config_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[[mmsc]\n")
    assert run_check(path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: TOML syntax error: ")
    assert "(at line 1, column" in err
    assert len(err.splitlines()) == 1


def test_check_config_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    assert main(["check-config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
    assert main(["check-config", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read file" in capsys.readouterr().err


# -- the error types the loader and the API raise -------------------------------------------------
def test_config_error_single_problem_defaults() -> None:
    from gateway.errors import ConfigProblem, GatewayError

    exc = ConfigError("must be > 0", "mmsc[0].tps")
    assert isinstance(exc, GatewayError)
    assert exc.problems == (ConfigProblem("mmsc[0].tps", "must be > 0"),)
    assert str(exc.problems[0]) == "mmsc[0].tps: must be > 0"
    assert str(ConfigProblem("", "cannot read file")) == "cannot read file"


@pytest.mark.parametrize(
    ("cls_name", "status", "code"),
    [
        ("ValidationError", 400, "validation_error"),
        ("AuthError", 401, "unauthorized"),
        ("ForbiddenError", 403, "forbidden"),
        ("NotFoundError", 404, "not_found"),
        ("IdempotencyConflict", 409, "idempotency_conflict"),
        ("PayloadTooLarge", 413, "payload_too_large"),
        ("UnsupportedMedia", 422, "unsupported_media"),
        ("Backpressure", 503, "queue_full"),
    ],
)
def test_api_error_leaves(cls_name: str, status: int, code: str) -> None:
    from gateway import errors

    cls = getattr(errors, cls_name)
    exc = cls("explained", field="to")
    assert isinstance(exc, errors.ApiError)
    assert (exc.http_status, exc.code, exc.field) == (status, code, "to")
    assert exc.to_json() == {"error": {"code": code, "message": "explained", "field": "to"}}
    overridden = cls("explained", code="invalid_number")
    assert overridden.code == "invalid_number"
    assert overridden.http_status == status
    assert overridden.to_json()["error"]["field"] is None


def test_backpressure_carries_retry_after() -> None:
    from gateway.errors import ApiError, Backpressure

    assert Backpressure().retry_after == 1.0
    busy = Backpressure("queue is full", retry_after=5)
    assert (busy.http_status, busy.retry_after, str(busy)) == (503, 5, "queue is full")
    generic = ApiError("rate_limited", "slow down", 429, retry_after=2.5)
    assert (generic.code, generic.http_status, generic.retry_after) == ("rate_limited", 429, 2.5)


def test_sms_fallback_needs_an_sms_section() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(base(fallback="sms"), environ={})
    assert problems(info.value) == {"mmsc[0].fallback": 'fallback = "sms" needs an [sms] section'}
    config = config_from_dict(
        {
            **base(fallback="sms", fallback_on=["rejected"]),
            "sms": {"sendsms_url": "http://k:13013/cgi-bin/sendsms", "username": "gw",
                    "password": "env:KPW"},
        },
        environ={"KPW": "s3cret"},
    )  # fmt: skip
    assert config.sms is not None and config.sms.password.get_secret_value() == "s3cret"
    assert config.mmsc[0].fallback_on == ("rejected",)


@pytest.mark.parametrize(
    ("mmsc", "sms", "path"),
    [
        ({"fallback": "mms"}, None, "mmsc[0].fallback"),
        ({"fallback_on": ["busy"]}, None, "mmsc[0].fallback_on[0]"),
        ({}, {"sendsms_url": "ftp://k", "username": "u", "password": "p"}, "sms.sendsms_url"),
        ({}, {"sendsms_url": "http://k", "username": "u", "password": "p", "max_segments": 11},
         "sms.max_segments"),
    ],
)  # fmt: skip
def test_sms_config_problems_have_key_paths(mmsc, sms, path) -> None:
    data = base(**mmsc) | ({"sms": sms} if sms else {})
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, environ={})
    assert path in problems(info.value), problems(info.value)
