"""Safe callback defaults: on a non-loopback MM7 listener every route authenticates its
callbacks (credentials, allow-list or the listener's client certificates) or says
``inbound_auth = "none"``; ``check-config`` reports each open route with its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config.callbacks import is_loopback
from gateway.config.load import config_from_dict
from gateway.errors import ConfigError

OPEN = "callbacks are unauthenticated on a non-loopback MM7 listener"


def config(mm7: str, *routes: dict[str, Any], **listen: Any) -> dict[str, Any]:
    return {
        "listen": {"mm7": mm7, **listen},
        "mmsc": [
            {"name": f"r{i}", "url": "http://127.0.0.1:9090/mm7", **route}
            for i, route in enumerate(routes)
        ],
    }


def problems(data: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, str]:
    try:
        config_from_dict(data, environ=environ or {})
    except ConfigError as exc:
        return {p.key_path: p.message for p in exc.problems}
    return {}


@pytest.mark.parametrize("mm7", ["0.0.0.0:8081", "[::]:8081", "10.1.2.3:8081", "mm7.internal:8081"])
def test_an_open_route_on_a_reachable_listener_is_an_error(mm7: str) -> None:
    found = problems(config(mm7, {}))
    assert list(found) == ["mmsc[0]"]
    assert found["mmsc[0]"].startswith(OPEN)
    assert 'inbound_auth = "none"' in found["mmsc[0]"]


@pytest.mark.parametrize("mm7", ["127.0.0.1:8081", "127.0.0.2:0", "[::1]:8081", "localhost:8081"])
def test_open_routes_are_fine_on_loopback(mm7: str) -> None:
    assert problems(config(mm7, {})) == {}


@pytest.mark.parametrize(
    "route",
    [
        {"inbound_auth": "none"},
        {"inbound_username": "mmsc", "inbound_password": "secret"},
        {"inbound_allow_ips": ["192.0.2.0/24"]},
    ],
    ids=["declared-open", "credentials", "allow-list"],
)
def test_each_way_of_authenticating_a_route_is_accepted(route: dict[str, Any]) -> None:
    assert problems(config("0.0.0.0:8081", route)) == {}


def test_client_certificates_on_the_listener_authenticate_every_route(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("mmsc-ca.pem", "server.pem", "server.key"))
    for path in (ca, cert, key):
        path.write_text("x")
    # mTLS on the listener needs HTTPS there (tls_cert_file and tls_key_file).
    data = config(
        "0.0.0.0:8081", {}, {},
        mm7_client_ca_file=str(ca), tls_cert_file=str(cert), tls_key_file=str(key),
    )  # fmt: skip
    assert problems(data) == {}
    missing = config("0.0.0.0:8081", {}, mm7_client_ca_file=str(tmp_path / "absent.pem"))
    assert "file not found" in problems(missing)["listen.mm7_client_ca_file"]


def test_only_the_open_routes_are_reported() -> None:
    found = problems(
        config(
            "0.0.0.0:8081",
            {"inbound_username": "a", "inbound_password": "b"},
            {},
            {"inbound_auth": "none"},
            {},
        )
    )
    assert sorted(found) == ["mmsc[1]", "mmsc[3]"]


def test_inbound_auth_none_with_credentials_or_allow_list_is_contradictory() -> None:
    for extra in (
        {"inbound_username": "a", "inbound_password": "b"},
        {"inbound_allow_ips": ["192.0.2.0/24"]},
    ):
        found = problems(config("127.0.0.1:8081", {"inbound_auth": "none", **extra}))
        assert found["mmsc[0].inbound_auth"].startswith('"none" says callbacks are open')
    assert "mmsc[0].inbound_auth" in problems(config("127.0.0.1:8081", {"inbound_auth": "open"}))


def test_inbound_credentials_may_come_from_the_environment() -> None:
    route = {"inbound_username": "env:MMSC_USER", "inbound_password": "env:MMSC_PASSWORD"}
    environ = {"MMSC_USER": "carrier", "MMSC_PASSWORD": "pw"}
    loaded = config_from_dict(config("0.0.0.0:8081", route), environ=environ)
    assert loaded.mmsc[0].inbound_username == "carrier"
    missing = problems(config("0.0.0.0:8081", route), {"MMSC_PASSWORD": "pw"})
    assert "MMSC_USER" in missing["mmsc[0].inbound_username"]


def test_check_config_names_each_open_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        '[listen]\nmm7 = "0.0.0.0:8081"\n'
        '[[mmsc]]\nname = "a"\nurl = "http://127.0.0.1:9090/mm7"\n'
        '[[mmsc]]\nname = "b"\nurl = "http://127.0.0.1:9091/mm7"\ninbound_auth = "none"\n'
        '[[mmsc]]\nname = "c"\nurl = "http://127.0.0.1:9092/mm7"\n'
    )
    assert main(["check-config", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["mmsc[0]", "mmsc[2]"]
    assert all(OPEN in line for line in lines)


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("0.0.0.0")  # noqa: S104 - an address to classify, not to bind
    assert not is_loopback("::") and not is_loopback("gateway")
