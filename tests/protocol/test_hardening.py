"""Hostile input fails fast with the specific ProtocolError subclass, never hangs or leaks."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    BodyTooLarge,
    DecodeError,
    HeadersTooLarge,
    Limits,
    MalformedMIME,
    MalformedXML,
    MimeTooDeep,
    NotSOAP,
    ProtocolError,
    TooLarge,
    TooManyParts,
    UnknownMessageType,
    XmlTooDeep,
    XmlTooLarge,
    decode,
)

NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
SOAP = (
    '<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
    f'<env:Body><SubmitRsp xmlns="{NS}"><MM7Version>6.8.0</MM7Version><Status><StatusCode>1000'
    "</StatusCode><StatusText>ok</StatusText></Status><MessageID>m</MessageID></SubmitRsp>"
    "</env:Body></env:Envelope>"
).encode()


@pytest.fixture(autouse=True)
def _fast(request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.perf_counter()
    yield
    if not hasattr(request.function, "hypothesis"):  # fuzz tests run many examples
        assert time.perf_counter() - started < 2.0, "hostile input must be refused quickly"


def test_billion_laughs_is_refused() -> None:
    lol = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
            for i in range(1, 10)
        )
        + b"]><lolz>&lol9;</lolz>"
    )
    with pytest.raises(MalformedXML, match="not allowed"):
        decode(lol, "text/xml")


def test_external_entity_is_refused() -> None:
    xxe = SOAP.replace(
        b'<?xml version="1.0"?>',
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    ).replace(b"<MessageID>m</MessageID>", b"<MessageID>&x;</MessageID>")
    with pytest.raises(MalformedXML):
        decode(xxe, "text/xml")


def test_any_dtd_is_refused() -> None:
    dtd = SOAP.replace(
        b'<?xml version="1.0"?>',
        b'<?xml version="1.0"?><!DOCTYPE Envelope SYSTEM "http://evil.example/x.dtd">',
    )
    with pytest.raises(MalformedXML, match="document type"):
        decode(dtd, "text/xml")


def test_undeclared_entity_reference_is_refused() -> None:
    with pytest.raises(MalformedXML):
        decode(SOAP.replace(b"<MessageID>m", b"<MessageID>&nope;"), "text/xml")


def test_oversize_body() -> None:
    with pytest.raises(BodyTooLarge, match="more than the 1024 allowed") as info:
        decode(b" " * 2048 + SOAP, "text/xml", limits=Limits(max_body_bytes=1024))
    assert info.value.limit == "max_body_bytes"
    assert info.value.maximum == 1024
    assert info.value.status_code == 2007


def test_oversize_soap_part() -> None:
    with pytest.raises(TooLarge) as info:
        decode(
            SOAP.replace(b"<MessageID>m", b"<MessageID>" + b"m" * 5000),
            "text/xml",
            limits=Limits(max_xml_bytes=4096),
        )
    assert isinstance(info.value, XmlTooLarge)
    assert info.value.limit == "max_xml_bytes"


def test_deep_xml_nesting() -> None:
    deep = SOAP.replace(b"<MessageID>m</MessageID>", b"<a>" * 100_000 + b"</a>" * 100_000)
    with pytest.raises((TooLarge, MalformedXML)) as info:
        decode(deep, "text/xml")
    # libxml2 stops at 256 levels without huge_tree; below that our own cap applies.
    if isinstance(info.value, TooLarge):
        assert info.value.limit == "max_xml_depth"
    moderate = SOAP.replace(b"<MessageID>m</MessageID>", b"<a>" * 60 + b"</a>" * 60)
    with pytest.raises(XmlTooDeep, match="nesting") as capped:
        decode(moderate, "text/xml")
    assert capped.value.limit == "max_xml_depth"


def _multipart(parts: list[bytes], boundary: bytes = b"b") -> bytes:
    out = [b"--" + boundary + b"\r\nContent-Type: text/xml\r\n\r\n" + SOAP + b"\r\n"]
    out += [b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\n" + p + b"\r\n" for p in parts]
    return b"".join(out) + b"--" + boundary + b"--\r\n"


def test_thousands_of_mime_parts() -> None:
    body = _multipart([b"x"] * 5000)
    with pytest.raises(TooManyParts, match="MIME parts") as info:
        decode(body, "multipart/related; boundary=b")
    assert info.value.limit == "max_mime_parts"
    assert len(decode(_multipart([b"x"] * 10), "multipart/related; boundary=b").attachments) == 10


def test_mime_nesting_depth() -> None:
    inner = b"leaf"
    for level in range(10):
        boundary = f"n{level}".encode()
        inner = (
            b"--"
            + boundary
            + b"\r\nContent-Type: text/plain\r\n\r\n"
            + inner
            + b"\r\n--"
            + boundary
            + b"--"
            if level == 0
            else b"--"
            + boundary
            + b'\r\nContent-Type: multipart/mixed; boundary="n'
            + str(level - 1).encode()
            + b'"\r\n\r\n'
            + inner
            + b"\r\n--"
            + boundary
            + b"--"
        )
    body = (
        b"--top\r\nContent-Type: text/xml\r\n\r\n"
        + SOAP
        + b'\r\n--top\r\nContent-Type: multipart/mixed; boundary="n9"\r\n\r\n'
        + inner
        + b"\r\n--top--\r\n"
    )
    with pytest.raises(MimeTooDeep, match="nested") as info:
        decode(body, "multipart/related; boundary=top")
    assert info.value.limit == "max_mime_depth"
    decoded = decode(body, "multipart/related; boundary=top", limits=Limits(max_mime_depth=12))
    assert decoded.attachments[0].is_multipart


def test_huge_part_headers() -> None:
    body = (
        b"--b\r\nContent-Type: text/xml\r\n"
        b"X-Junk: " + b"a" * 20_000 + b"\r\n\r\n" + SOAP + b"\r\n--b--\r\n"
    )
    with pytest.raises(HeadersTooLarge) as info:
        decode(body, "multipart/related; boundary=b")
    assert info.value.limit == "max_header_bytes"


def _nested(levels: int) -> bytes:
    """A multipart/related body whose second part nests ``levels`` multiparts deep."""
    inner = b"--n0\r\nContent-Type: text/plain\r\n\r\nleaf\r\n--n0--"
    for level in range(1, levels):
        inner = (
            f'--n{level}\r\nContent-Type: multipart/mixed; boundary="n{level - 1}"\r\n\r\n'.encode()
            + inner
            + f"\r\n--n{level}--".encode()
        )
    return (
        b"--top\r\nContent-Type: text/xml\r\n\r\n"
        + SOAP
        + f'\r\n--top\r\nContent-Type: multipart/mixed; boundary="n{levels - 1}"\r\n\r\n'.encode()
        + inner
        + b"\r\n--top--\r\n"
    )


#: limit -> (its error class, an input over it with the limit set low, the Content-Type)
OVER_LIMIT: dict[str, tuple[type[TooLarge], bytes, str, Limits]] = {
    "max_body_bytes": (BodyTooLarge, SOAP, "text/xml", Limits(max_body_bytes=100)),
    "max_xml_bytes": (XmlTooLarge, SOAP, "text/xml", Limits(max_xml_bytes=100)),
    "max_xml_depth": (XmlTooDeep, SOAP, "text/xml", Limits(max_xml_depth=3)),
    "max_mime_parts": (
        TooManyParts,
        _multipart([b"x"] * 5),
        "multipart/related; boundary=b",
        Limits(max_mime_parts=3),
    ),
    "max_mime_depth": (
        MimeTooDeep,
        _nested(3),
        "multipart/related; boundary=top",
        Limits(max_mime_depth=2),
    ),
    "max_header_bytes": (
        HeadersTooLarge,
        b"--b\r\nContent-Type: text/xml\r\nX-Junk: "
        + b"a" * 300
        + b"\r\n\r\n"
        + SOAP
        + b"\r\n--b--\r\n",
        "multipart/related; boundary=b",
        Limits(max_header_bytes=200),
    ),
}


def test_every_limit_has_its_own_error_class() -> None:
    assert set(OVER_LIMIT) == {f.name for f in dataclasses.fields(Limits)}
    classes = [cls for cls, *_ in OVER_LIMIT.values()]
    assert len(set(classes)) == len(classes)


@pytest.mark.parametrize("limit", sorted(OVER_LIMIT))
def test_each_limit_raises_its_specific_too_large(limit: str) -> None:
    cls, body, content_type, limits = OVER_LIMIT[limit]
    with pytest.raises(cls) as info:
        decode(body, content_type, limits=limits)
    error = info.value
    assert type(error) is cls
    assert isinstance(error, TooLarge)  # existing ``except TooLarge`` keeps working
    assert isinstance(error, DecodeError)
    assert (error.limit, error.maximum) == (limit, getattr(limits, limit))
    assert error.value > error.maximum
    assert error.status_code == 2007
    assert str(error)  # a clear message
    # Under the default limits the same input decodes.
    decode(body, content_type)


def test_too_large_still_takes_an_explicit_limit_name() -> None:
    error = TooLarge("too big", limit="max_body_bytes", value=2, maximum=1)
    assert (error.limit, error.value, error.maximum) == ("max_body_bytes", 2, 1)
    assert BodyTooLarge("too big", value=2, maximum=1).limit == "max_body_bytes"


def test_truncated_mime() -> None:
    body = _multipart([b"x"])[:40]
    with pytest.raises((MalformedMIME, MalformedXML)):
        decode(body, "multipart/related; boundary=b")


def test_boundary_that_never_occurs() -> None:
    with pytest.raises(MalformedMIME, match="no MIME delimiter"):
        decode(_multipart([b"x"]), "multipart/related; boundary=other")


def test_multipart_without_any_boundary() -> None:
    with pytest.raises(MalformedMIME):
        decode(b"garbage without structure", "multipart/related")


def test_body_that_is_neither_xml_nor_mime() -> None:
    with pytest.raises(MalformedMIME, match="neither XML nor"):
        decode(b"\x00\x01\x02 binary junk", "application/octet-stream")


def test_invalid_utf8() -> None:
    bad = SOAP.replace(b"<MessageID>m", b"<MessageID>\xff\xfe\xc3\x28")
    with pytest.raises(MalformedXML):
        decode(
            bad.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-8"?>'),
            "text/xml",
        )


def test_empty_body() -> None:
    with pytest.raises(DecodeError):
        decode(b"", "text/xml")


def test_xml_that_is_not_soap() -> None:
    with pytest.raises(NotSOAP):
        decode(b"<html><body>502 Bad Gateway</body></html>", "text/html")
    with pytest.raises(NotSOAP, match="no Body"):
        decode(b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"/>', "text/xml")


def test_unknown_body_element() -> None:
    with pytest.raises(UnknownMessageType) as info:
        decode(SOAP.replace(b"SubmitRsp", b"LaunchMissilesReq"), "text/xml")
    assert info.value.status_code == 4003


def test_fault_without_mm7_detail() -> None:
    fault = (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><e:Fault>'
        b"<faultcode>e:Server</faultcode><faultstring>boom</faultstring></e:Fault></e:Body></e:Envelope>"
    )
    with pytest.raises(UnknownMessageType, match="boom"):
        decode(fault, "text/xml")


def test_every_error_is_a_protocol_error_with_a_status_code() -> None:
    for cls in (
        MalformedXML,
        MalformedMIME,
        NotSOAP,
        UnknownMessageType,
        TooLarge,
        *(cls for cls, *_ in OVER_LIMIT.values()),
    ):
        assert issubclass(cls, DecodeError)
        assert issubclass(cls, ProtocolError)
        assert 2000 <= cls.status_code < 5000


# -- fuzzing: whatever the bytes, only ProtocolError comes out ---------------------------------

_SEED_BODIES = [
    (
        'multipart/related; boundary="b"; start="<soap>"',
        b"--b\r\nContent-Type: text/xml\r\nContent-ID: <soap>\r\n\r\n"
        + SOAP.replace(
            b"<MessageID>m</MessageID>", b'<MessageID>m</MessageID><Content href="cid:x"/>'
        )
        + b"\r\n--b\r\nContent-Type: multipart/mixed; boundary=in\r\nContent-ID: <x>\r\n\r\n"
        b"--in\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
        b"--in\r\nContent-Type: image/gif\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGIF=3D\r\n"
        b"--in--\r\n--b--\r\n",
    ),
    ("text/xml", SOAP),
]


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=600),
    st.sampled_from([None, "text/xml", "multipart/related; boundary=b", "multipart/related"]),
)
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes, content_type: str | None) -> None:
    with contextlib.suppress(ProtocolError):
        decode(data, content_type)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_messages_raise_only_protocol_errors(data: st.DataObject) -> None:
    content_type, body = data.draw(st.sampled_from(_SEED_BODIES))
    mutable = bytearray(body)
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        pos = data.draw(st.integers(0, max(len(mutable) - 1, 0)))
        if action == "flip" and mutable:
            mutable[pos] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del mutable[pos : pos + data.draw(st.integers(1, 40))]
        elif action == "dup":
            mutable[pos:pos] = mutable[pos : pos + data.draw(st.integers(1, 40))]
        else:
            mutable[pos:pos] = data.draw(
                st.sampled_from([b"\r\n", b"--b", b"<", b"&", b"\xff", b"--in--", b":"])
            )
    with contextlib.suppress(ProtocolError):
        decode(bytes(mutable), content_type)
