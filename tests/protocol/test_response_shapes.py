"""ResponseShapes: the same message (and the same errors) as the full decoder, every time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import DecodeError, DeliverRsp, EncodeError, SubmitRsp, decode, encode
from protocol.capture import split_http_message
from protocol.layouts import LAYOUTS
from protocol.limits import Limits
from protocol.response_shapes import ResponseShapes
from tests.conftest import SHARED_MM7

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mm7"
RSP_VERSIONS = sorted(v for v in LAYOUTS if "SubmitRsp" in LAYOUTS[v])
IDS = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/+=-",
    min_size=1,
    max_size=100,
)


def outcome(shapes: ResponseShapes | None, body: bytes, content_type: str | None) -> Any:
    """Everything the caller can see: the message with its non-compared fields, or the
    error's type and text."""
    try:
        message = (
            decode(body, content_type) if shapes is None else shapes.decode(body, content_type)
        )
    except DecodeError as exc:
        return (type(exc), str(exc), exc.status_code)
    return (message, type(message), message.version, message.leniencies)


def same_as_decoder(shapes: ResponseShapes, body: bytes, content_type: str | None) -> None:
    assert outcome(shapes, body, content_type) == outcome(None, body, content_type)


def captured() -> list[tuple[str, bytes, str | None]]:
    """Every vendor sample and our own fixtures: (name, body, Content-Type)."""
    found = []
    paths = sorted((SHARED_MM7 / "samples").glob("*")) if SHARED_MM7.is_dir() else []
    for path in [*paths, *sorted(FIXTURES.glob("*"))]:
        if path.name.endswith((".json", ".md")):
            continue
        _, headers, body = split_http_message(path.read_bytes())
        found.append((path.name, body, headers.get("content-type")))
    return found


CAPTURED = captured()


def compacted(body: bytes) -> bytes:
    """Values without the whitespace around them (what makes a vendor shape reusable)."""
    return re.sub(rb">\s+([^<>\s]+)\s+</", rb">\1</", body)


def with_ids(body: bytes, transaction_id: str, message_id: str) -> bytes:
    body = re.sub(
        rb"(<(?:\w+:)?TransactionID[^<>]*>)[^<>]+(</)",
        rb"\g<1>" + transaction_id.encode() + rb"\2",
        body,
    )
    return re.sub(
        rb"(<(?:\w+:)?MessageID[^<>]*>)[^<>]+(</)", rb"\g<1>" + message_id.encode() + rb"\2", body
    )


@pytest.mark.parametrize(("name", "body", "content_type"), CAPTURED, ids=[c[0] for c in CAPTURED])
def test_every_capture_decodes_as_the_decoder_does(
    name: str, body: bytes, content_type: str | None
) -> None:
    shapes = ResponseShapes()
    for variant in (body, compacted(body)):
        for n in range(3):  # the first of a shape is decoded in full, the others may reuse it
            changed = with_ids(variant, f"tx-{n}", f"mid.{n}") if n else variant
            same_as_decoder(shapes, changed, content_type)
    assert CAPTURED, "no captures found"


def test_a_vendor_submit_rsp_shape_is_reused() -> None:
    path = SHARED_MM7 / "samples" / "instantcom-submitrsp-bogus-ns-rel6-mm7-6-7.xml"
    if not path.is_file():
        pytest.skip("shared MM7 samples not found")
    body = compacted(path.read_bytes())
    shapes = ResponseShapes()
    for n in range(5):
        changed = with_ids(body, f"vas{n}", f"0415{n}")
        same_as_decoder(shapes, changed, "text/xml")
        assert shapes.decode(changed, "text/xml").message_id == f"0415{n}"  # type: ignore[attr-defined]
    assert shapes.misses == 1
    assert shapes.hits == 9


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from(RSP_VERSIONS),
    status=st.sampled_from([1000, 1100, 2001, 3001, 4006]),
    text=st.none() | st.sampled_from(["Success", "Accepted", "queued for delivery"]),
    ids=st.lists(st.tuples(IDS, st.none() | IDS), min_size=2, max_size=8),
)
def test_encoded_answers_decode_as_the_decoder_does(
    version: str, status: int, text: str | None, ids: list[tuple[str, str | None]]
) -> None:
    shapes = ResponseShapes()
    for transaction_id, message_id in ids:
        rsp = SubmitRsp(
            transaction_id=transaction_id,
            status_code=status,
            status_text=text,
            message_id=message_id,
        )
        try:
            content_type, body = encode(rsp, version)
        except EncodeError:
            continue  # not valid in this version (NMTOKEN ids, MessageID required or absent)
        same_as_decoder(shapes, body, content_type)
        decoded = shapes.decode(body, content_type)
        assert isinstance(decoded, SubmitRsp)
        assert (decoded.transaction_id, decoded.message_id) == (transaction_id, message_id)


def test_our_mock_answers_are_reused() -> None:
    shapes = ResponseShapes()
    for n in range(4):
        content_type, body = encode(
            SubmitRsp(transaction_id=f"t{n}", status_code=1000, message_id=f"m{n}"), "REL-6-MM7-1-4"
        )
        shapes.decode(body, content_type)
    assert (shapes.misses, shapes.hits) == (1, 3)


def rsp_body(transaction_id: str, message_id: str, *, between: str = "") -> bytes:
    return (
        '<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
        '<env:Header><mm7:TransactionID xmlns:mm7="http://www.3gpp.org/ftp/Specs/archive/'
        '23_series/23.140/schema/REL-6-MM7-1-4">' + transaction_id + "</mm7:TransactionID>"
        '</env:Header><env:Body><SubmitRsp xmlns="http://www.3gpp.org/ftp/Specs/archive/'
        '23_series/23.140/schema/REL-6-MM7-1-4"><MM7Version>6.8.0</MM7Version><Status>'
        "<StatusCode>1000</StatusCode></Status>"
        + between
        + "<MessageID>"
        + message_id
        + "</MessageID></SubmitRsp></env:Body></env:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    "make",
    [
        # Values the decoder strips, unescapes or would read differently.
        lambda n: rsp_body(f" t{n} ", f"m{n}"),
        lambda n: rsp_body(f"t{n}", f"m&amp;{n}"),
        lambda n: rsp_body(f"t{n}<!-- c -->", f"m{n}"),
        # A look-alike in a comment or processing instruction.
        lambda n: rsp_body("t", "m", between=f"<!-- <MessageID>x{n}</MessageID> -->"),
        lambda n: rsp_body("t", "m", between=f"<?pi <MessageID>x{n}</MessageID> ?>"),
        # A value twice, or the element in another case.
        lambda n: rsp_body(f"t{n}", f"m{n}", between=f"<MessageID>n{n}</MessageID>"),
        lambda n: rsp_body(f"t{n}", f"m{n}").replace(b"MessageID", b"messageID"),
        # No TransactionID at all.
        lambda n: rsp_body(f"t{n}", f"m{n}").replace(b"TransactionID", b"Transaction"),
    ],
)
def test_what_the_memo_cannot_vouch_for_is_decoded_in_full(make: Any) -> None:
    shapes = ResponseShapes()
    for n in range(3):
        same_as_decoder(shapes, make(n), "text/xml")
    assert shapes.hits == 0


def test_other_message_types_are_not_remembered() -> None:
    shapes = ResponseShapes()
    for n in range(3):
        content_type, body = encode(
            DeliverRsp(transaction_id=f"t{n}", status_code=1000), "REL-6-MM7-1-4"
        )
        same_as_decoder(shapes, body, content_type)
    assert shapes.hits == 0


def test_errors_and_limits_are_the_decoders() -> None:
    shapes = ResponseShapes()
    content_type, body = encode(
        SubmitRsp(transaction_id="t", status_code=1000, message_id="m"), "REL-6-MM7-1-4"
    )
    tight = Limits(max_body_bytes=len(body) - 1)
    strict = ResponseShapes(limits=tight)
    for _ in range(2):
        with pytest.raises(DecodeError) as caught:
            strict.decode(body, content_type)
        with pytest.raises(type(caught.value)):
            decode(body, content_type, limits=tight)
    shapes.decode(body, content_type)
    broken = body.replace(b"</env:Body>", b"")
    same_as_decoder(shapes, broken, content_type)


def test_shapes_are_bounded() -> None:
    shapes = ResponseShapes(max_entries=2)
    for status in (1000, 1100, 2001, 1000):
        content_type, body = encode(
            SubmitRsp(transaction_id="t", status_code=status, message_id="m"), "REL-6-MM7-1-4"
        )
        shapes.decode(body, content_type)
    assert len(shapes._shapes) == 2
    assert shapes.hits == 0  # 1000 was the least recently used when 2001 came
