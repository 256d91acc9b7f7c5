"""GSM-7 / UCS-2 segment counting and fitting a text plus a short link (pure functions)."""

from __future__ import annotations

import pytest

from gateway.sms.segments import compose, segment_info

LINK = "https://gw.example/m/AbCdEfGh23"


@pytest.mark.parametrize(
    ("text", "coding", "units", "segments"),
    [
        ("", "gsm7", 0, 1),
        ("a" * 160, "gsm7", 160, 1),
        ("a" * 161, "gsm7", 161, 2),
        ("a" * 306, "gsm7", 306, 2),
        ("a" * 307, "gsm7", 307, 3),
        ("€" * 80, "gsm7", 160, 1),  # extension table: two septets each
        ("€" * 81, "gsm7", 162, 2),
        ("Ünïcode", "ucs2", 7, 1),  # ï is not in GSM 03.38
        ("é" * 160, "gsm7", 160, 1),  # é is
        ("你" * 70, "ucs2", 70, 1),
        ("你" * 71, "ucs2", 71, 2),
        ("你" * 134, "ucs2", 134, 2),
        ("你" * 135, "ucs2", 135, 3),
        ("😀" * 35, "ucs2", 70, 1),  # outside the BMP: a surrogate pair each
    ],
)
def test_segment_info(text, coding, units, segments):
    info = segment_info(text)
    assert (info.coding, info.units, info.segments) == (coding, units, segments)


def test_escape_pair_is_not_split_across_segments():
    # 152 septets, then "€" (2): 154 > 153, so the pair opens segment 2; 152 + 2 + 152
    # would fit two segments of 153 if it could be split, it cannot: three.
    text = "a" * 152 + "€" + "a" * 152
    assert segment_info(text).units == 306
    assert segment_info(text).segments == 3


def test_surrogate_pair_is_not_split_across_segments():
    text = "你" * 66 + "😀" + "你" * 66  # 134 units, but the pair straddles unit 67
    assert segment_info(text).units == 134
    assert segment_info(text).segments == 3


def test_compose_short_text_keeps_everything():
    assert compose("Hello", LINK, 1) == f"Hello {LINK}"
    assert compose("", LINK, 1) == LINK
    assert compose("Hello", None, 1) == "Hello"


@pytest.mark.parametrize("max_segments", [1, 2, 3])
@pytest.mark.parametrize("body", ["word " * 200, "слово " * 200, "€uro " * 200, "😀" * 300])
def test_compose_never_cuts_the_link(body, max_segments):
    text = compose(body, LINK, max_segments)
    assert text.endswith(" " + LINK)
    assert segment_info(text).segments <= max_segments
    assert text.removesuffix(" " + LINK).endswith(("...", "…"))
    # As long as possible: one more character of the body would not fit.
    kept = len(text) - len(LINK) - 1
    assert kept > 0


def test_compose_uses_a_gsm7_ellipsis_for_gsm7_text():
    text = compose("a" * 400, LINK, 1)
    assert segment_info(text).coding == "gsm7"
    assert text == "a" * (160 - len(LINK) - 1 - 3) + "... " + LINK


def test_compose_sends_the_link_alone_when_nothing_else_fits():
    long_link = "https://gw.example/m/" + "x" * 150
    assert compose("Hello there", long_link, 1) == long_link
