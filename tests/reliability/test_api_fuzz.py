"""Property test: whatever JSON (or junk) a client sends, the REST API answers below 500
with a well-formed error envelope. Generated bodies go over real HTTP to a real
``mm7-gateway serve`` subprocess; strings include lone surrogates, numbers run past any
float, types are wrong and nesting is deep."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reliability.helpers import AUTH, Daemon, free_port, gateway_toml

FIELDS = [
    "to", "from", "subject", "text", "media", "route", "delivery_report", "read_report",
    "priority", "send_at", "expires_at", "callback_url", "client_ref",
]  # fmt: skip

strings = st.one_of(
    st.text(max_size=12),
    st.text(max_size=6).map(lambda s: s + "\ud800"),
    st.sampled_from(["\udfff", "a\udc80b", "+12025550123", "12345", "", "9" * 40, "high"]),
    st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00Z"]),
    st.sampled_from(["http://127.0.0.1:9/a.jpg", "http://[::1]/x", "AA==", "mock"]),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, strings)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), strings), inner, max_size=4),
    ),
    max_leaves=12,
)
media_items = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"data": json_values}, optional={"content_type": json_values, "name": json_values}
    ),
    st.fixed_dictionaries({"url": strings}, optional={"name": json_values}),
    st.fixed_dictionaries({"part": json_values}),
)
messages = st.fixed_dictionaries(
    {"to": st.one_of(st.just("+12025550123"), json_values)},
    optional={
        **{name: json_values for name in FIELDS if name not in {"to", "media"}},
        "media": st.one_of(json_values, st.lists(media_items, max_size=3)),
        "junk": json_values,
    },
)
#: A valid message with one field replaced: reaches the checks after the first refusal.
one_bad_field = st.tuples(st.sampled_from(FIELDS), json_values).map(
    lambda pair: {"to": "+12025550123", "text": "hi", pair[0]: pair[1]}
)
one_bad_replacement = st.tuples(st.sampled_from(["subject", "text", "media"]), json_values).map(
    lambda pair: {"text": "hi", pair[0]: pair[1]}
)
deep = st.integers(min_value=1, max_value=100_000).map(lambda n: "[" * n + "]" * n)
bodies = st.one_of(
    one_bad_field.map(lambda m: json.dumps(m).encode()),
    messages.map(lambda m: json.dumps(m).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    deep.map(str.encode),
    st.binary(max_size=64),
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("fuzz")
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    config: Path = tmp / "gateway.toml"
    config.write_text(
        gateway_toml(
            tmp / "data",
            "http://127.0.0.1:9/mm7",  # nothing listens: accepted messages just wait
            ports,
            gateway={"media_fetch_timeout_seconds": 0.5},
        )
    )
    daemon = Daemon(["serve", "--config", str(config)], tmp / "gateway.log")
    daemon.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ports['ops']}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or not daemon.alive():
                    raise
                time.sleep(0.05)
        # One message that stays queued (sent in 2100), for PUT bodies to reach parsing.
        status, created = request(
            ports["api"],
            "POST",
            "/v1/messages",
            b'{"to": "+12025550123", "text": "x", "send_at": "2100-01-01T00:00:00Z"}',
            "application/json",
        )
        assert status == 202, created
        yield ports["api"], created["id"]
    finally:
        daemon.stop()


def request(port: int, method: str, path: str, body: bytes, content_type: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        headers = {**AUTH, "Content-Type": content_type}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def check(status: int, answer: Any) -> None:
    assert status < 500, answer
    if status >= 400:
        assert set(answer) == {"error"}, answer
        error = answer["error"]
        assert set(error) == {"code", "message", "field"}, error
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str)
        assert error["field"] is None or isinstance(error["field"], str)


FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    # No explain phase: its value comparisons trip -bb's BytesWarning on binary bodies.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.slow
@FUZZ
@given(body=bodies)
def test_post_messages_never_fails_with_5xx(api: tuple[int, str], body: bytes) -> None:
    check(*request(api[0], "POST", "/v1/messages", body, "application/json"))


@pytest.mark.slow
@FUZZ
@given(message=st.one_of(one_bad_field, one_bad_field, messages), name=strings)
def test_multipart_messages_never_fail_with_5xx(
    api: tuple[int, str], message: Any, name: str
) -> None:
    safe_name = name.encode("ascii", "ignore").decode().replace('"', "")
    parts = [
        b'--b0\r\nContent-Disposition: form-data; name="message"\r\n'
        b"Content-Type: application/json\r\n\r\n" + json.dumps(message).encode() + b"\r\n",
        f'--b0\r\nContent-Disposition: form-data; name="{safe_name}"; filename="a"\r\n'.encode()
        + b"Content-Type: image/jpeg\r\n\r\n\xff\xd8junk\r\n",
        b"--b0--\r\n",
    ]
    form = "multipart/form-data; boundary=b0"
    check(*request(api[0], "POST", "/v1/messages", b"".join(parts), form))


@pytest.mark.slow
@FUZZ
@given(
    body=st.one_of(one_bad_replacement.map(lambda m: json.dumps(m).encode()), bodies),
    path_id=strings,
)
def test_put_and_get_never_fail_with_5xx(api: tuple[int, str], body: bytes, path_id: str) -> None:
    port, queued = api
    check(*request(port, "PUT", f"/v1/messages/{queued}", body, "application/json"))
    quoted = urllib.request.quote(path_id.encode("utf-8", "surrogatepass"), safe="") or "x"
    for method, path in (
        ("PUT", f"/v1/messages/{quoted}"),
        ("GET", f"/v1/messages/{quoted}"),
        ("DELETE", f"/v1/messages/{quoted}"),
        ("GET", f"/v1/inbound/{quoted}"),
        ("GET", f"/v1/inbound?before={quoted}&limit=3"),
    ):
        check(*request(port, method, path, body, "application/json"))
