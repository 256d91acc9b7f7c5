"""Fuzzing ``protocol.decode``: whatever the bytes, it returns a ``Message`` or raises a
``ProtocolError`` subclass — never another exception, never a hang.

Two hypothesis strategies, kept small so they run in seconds: random bytes under the
content types MMSCs send, and real vendor captures from ``../shared/mm7/samples``
(skipped when that folder is absent) mutated by byte flips, cuts, duplications and
insertions of MIME/XML metacharacters. ``bench/fuzz_decode.py`` is the long-running
(atheris, when installed) version of the same property.
"""

from __future__ import annotations

import time
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import Message, ProtocolError, decode
from protocol.capture import split_http_message
from tests.conftest import SHARED_MM7

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "text/xml",
        "text/xml; charset=euc-kr",
        "application/soap+xml",
        'multipart/related; boundary="b"; type="text/xml"; start="<soap>"',
        "multipart/related; boundary=b",
        "multipart/related",
        "multipart/mixed; boundary=",
    ]
)
TOKENS = [b"\r\n", b"--", b"<", b">", b"&", b"&lt;", b"]]>", b"\xff", b"\x00", b":", b"=", b'"',
          b"<!DOCTYPE x>", b"<![CDATA[", b"Content-Type: multipart/related; boundary=z\r\n"]  # fmt: skip


@cache
def samples() -> tuple[tuple[str | None, bytes], ...]:
    folder = SHARED_MM7 / "samples"
    if not folder.is_dir():
        return ()
    out = []
    for path in sorted(folder.iterdir()):
        if path.name == "INDEX.json" or not path.is_file():
            continue
        try:
            _, headers, body = split_http_message(path.read_bytes())
        except ProtocolError:
            continue
        out.append((headers.get("content-type"), body))
    return tuple(out)


def check(body: bytes, content_type: str | None) -> None:
    started = time.perf_counter()
    result: object
    try:
        result = decode(body, content_type)
    except ProtocolError as exc:
        result = exc
    if isinstance(result, ProtocolError):
        assert isinstance(getattr(result, "status_code", None), int), repr(result)
    else:
        assert isinstance(result, Message), repr(result)
    assert time.perf_counter() - started < 2.0, "decode must not stall on any input"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), CONTENT_TYPES)
def test_random_bytes_decode_or_raise_protocol_errors(
    body: bytes, content_type: str | None
) -> None:
    check(body, content_type)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_vendor_samples_decode_or_raise_protocol_errors(data: st.DataObject) -> None:
    corpus = samples()
    if not corpus:
        pytest.skip(f"vendor samples not found under {SHARED_MM7 / 'samples'}")
    content_type, body = data.draw(st.sampled_from(corpus))
    mutable = bytearray(body)
    for _ in range(data.draw(st.integers(1, 8))):
        action = data.draw(st.sampled_from(["flip", "cut", "dup", "insert", "truncate"]))
        pos = data.draw(st.integers(0, max(len(mutable) - 1, 0)))
        if action == "flip" and mutable:
            mutable[pos] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del mutable[pos : pos + data.draw(st.integers(1, 200))]
        elif action == "dup":
            mutable[pos:pos] = mutable[pos : pos + data.draw(st.integers(1, 200))]
        elif action == "insert":
            mutable[pos:pos] = data.draw(st.sampled_from(TOKENS))
        else:
            del mutable[pos:]
    check(bytes(mutable), data.draw(st.sampled_from([content_type, None])))


def test_every_vendor_sample_decodes_or_raises_a_protocol_error() -> None:
    """The unmutated corpus itself (the seed of the mutations above)."""
    corpus = samples()
    if not corpus:
        pytest.skip(f"vendor samples not found under {SHARED_MM7 / 'samples'}")
    for content_type, body in corpus:
        check(body, content_type)
