"""EnvelopeTemplates: the same bytes as the ordinary encoder, for every SubmitReq."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    Address,
    Attachment,
    ContentReference,
    EncodeError,
    EnvelopeTemplates,
    Recipients,
    SenderIdentification,
    SubmitReq,
    encode,
)
from protocol.layouts import LAYOUTS
from protocol.versions import LEGACY_VERSIONS
from tests.protocol.strategies import messages

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Legacy versions always take the encoder (tested below), so they are not drawn here.
SUBMIT_VERSIONS = sorted(
    v for v in LAYOUTS if "SubmitReq" in LAYOUTS[v] and v not in LEGACY_VERSIONS
)


def both(message: SubmitReq, version: str, templates: EnvelopeTemplates) -> None:
    plain = encode(message, version)
    assert encode(message, version, templates=templates) == plain


def other_values(message: SubmitReq, n: int) -> SubmitReq:
    """The same shape with every variable value changed (what a template is reused for)."""
    ident = message.sender_identification
    sender = ident.sender_address
    recipients = message.recipients
    return dataclasses.replace(
        message,
        transaction_id=f"tx-{n}",
        sender_identification=ident
        if sender is None
        else dataclasses.replace(ident, sender_address=dataclasses.replace(sender, value=f"{n}77")),
        recipients=Recipients(
            to=tuple(dataclasses.replace(a, value=f"+1202555{n:04d}") for a in recipients.to),
            cc=tuple(dataclasses.replace(a, value=f"+1303555{n:04d}") for a in recipients.cc),
            bcc=tuple(dataclasses.replace(a, value=f"a{n}@example.com") for a in recipients.bcc),
        ),
        subject=None if message.subject is None else f"Sale & <offer> n°{n}",
        expiry_date=None
        if message.expiry_date is None
        else datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(seconds=n),
    )


@SETTINGS
@given(st.data())
def test_template_output_equals_the_encoder(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(SUBMIT_VERSIONS))
    message = data.draw(messages(version, "SubmitReq"))
    assert isinstance(message, SubmitReq)
    templates = EnvelopeTemplates()
    both(message, version, templates)  # builds the template
    both(message, version, templates)  # served from it
    for n in range(3):
        both(other_values(message, n), version, templates)
    TEMPLATED.append(templates.hits > 0)


#: Whether each generated message was served from a template at all (checked below: a
#: template that always fell back would pass the equality test without testing anything).
TEMPLATED: list[bool] = []


def test_generated_messages_mostly_use_templates() -> None:
    if not TEMPLATED:
        pytest.skip("runs after test_template_output_equals_the_encoder")
    assert sum(TEMPLATED) >= len(TEMPLATED) * 0.8


def text_submit(**changes: object) -> SubmitReq:
    message = SubmitReq(
        transaction_id="msg_1-1",
        sender_identification=SenderIdentification(
            vasp_id="vasp", vas_id="vas", sender_address=Address.short_code("12345")
        ),
        recipients=Recipients(to=(Address.number("+12025550101"),)),
        delivery_report=False,
        subject="Hello",
        expiry_date=datetime(2026, 12, 8, tzinfo=UTC),
        content=ContentReference(href="cid:text"),
        attachments=(Attachment(content_type="text/plain", data=b"hi", content_id="text"),),
    )
    return dataclasses.replace(message, **changes)  # type: ignore[arg-type]


def test_messages_of_one_shape_share_a_template() -> None:
    templates = EnvelopeTemplates()
    version = "REL-6-MM7-1-4"
    for n in range(5):
        both(text_submit(transaction_id=f"msg_{n}-1", subject=f"n{n}"), version, templates)
    assert templates.hits == 5
    assert len(templates._items) == 1


@pytest.mark.parametrize(
    "subject",
    ["a & b < c > d", "ünïcödé ✓ 한국어", "quote \" and ' apostrophe", "tab\tand\nnewline"],
)
def test_escaped_values_match_libxml2(subject: str) -> None:
    templates = EnvelopeTemplates()
    both(text_submit(), "REL-6-MM7-1-4", templates)
    both(text_submit(subject=subject), "REL-6-MM7-1-4", templates)
    assert templates.hits == 2


def test_values_libxml2_would_rewrite_or_refuse_take_the_encoder() -> None:
    templates = EnvelopeTemplates()
    both(text_submit(subject="carriage\rreturn"), "REL-6-MM7-1-4", templates)
    with pytest.raises(ValueError, match="XML compatible"):
        encode(text_submit(subject="bell\x07"), "REL-6-MM7-1-4", templates=templates)
    assert templates.hits == 0


def test_legacy_versions_take_the_encoder() -> None:
    templates = EnvelopeTemplates()
    for legacy in sorted(v for v in LEGACY_VERSIONS if "SubmitReq" in LAYOUTS[v]):
        plain = text_submit(sender_identification=SenderIdentification(vasp_id="v"))
        both(plain, legacy, templates)
    assert templates.hits == 0


def test_an_invalid_message_raises_what_the_encoder_raises() -> None:
    templates = EnvelopeTemplates()
    with pytest.raises(EncodeError, match="transaction_id"):
        encode(text_submit(transaction_id=None), "REL-6-MM7-1-4", templates=templates)
    with pytest.raises(EncodeError, match="at least one"):
        encode(text_submit(recipients=Recipients()), "REL-6-MM7-1-4", templates=templates)


def test_the_cache_is_bounded() -> None:
    templates = EnvelopeTemplates(max_entries=2)
    for n in range(4):
        both(text_submit(sender_identification=SenderIdentification(vasp_id=f"v{n}")),
             "REL-6-MM7-1-4", templates)  # fmt: skip
    assert len(templates._items) == 2
