"""SMIL generation for multi-part messages."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.media import MediaPart, build_smil, ensure_smil, needs_smil, sniff


def _part(content_type: str, content_id: str | None, data: bytes = b"x") -> MediaPart:
    return MediaPart(content_type=content_type, data=data, content_id=content_id)


def _sources(smil: bytes) -> list[str]:
    root = etree.fromstring(smil)
    return [el.get("src") for el in root.iter() if el.get("src")]


def test_generated_smil_references_every_part() -> None:
    parts = [
        _part("text/plain; charset=utf-8", "text"),
        _part("image/jpeg", "a.jpg"),
        _part("audio/amr", "voice"),
        _part("image/gif", "b.gif"),
        _part("video/mp4", "clip"),
        _part("text/vcard", "card"),
    ]
    smil = build_smil(parts)
    root = etree.fromstring(smil)
    assert root.tag == "smil"
    assert sorted(_sources(smil)) == sorted(f"cid:{p.content_id}" for p in parts)
    pars = root.findall("body/par")
    assert len(pars) == 3  # one slide per visual part
    first = pars[0]
    assert first.find("img").get("src") == "cid:a.jpg"
    assert first.find("text").get("src") == "cid:text"
    assert first.find("audio").get("src") == "cid:voice"
    assert first.get("dur") is None  # the audio sets the pace
    assert pars[1].get("dur") == "5000ms"
    assert pars[2].find("video").get("src") == "cid:clip"
    assert {r.get("id") for r in root.iter("region")} == {"Image", "Text"}
    assert sniff(smil, "application/smil").kind == "smil"  # our own validator accepts it


def test_ensure_smil_adds_ids_and_smil_first() -> None:
    parts = [_part("image/jpeg", None), _part("text/plain", None), _part("image/png", "part0.jpg")]
    out = ensure_smil(parts)
    assert out[0].content_type == "application/smil"
    assert out[0].content_id == "smil"
    ids = [p.content_id for p in out[1:]]
    assert len(set(ids)) == 3
    assert all(ids)
    assert ids[2] == "part0.jpg"
    assert ids[0] != "part0.jpg"
    assert sorted(_sources(out[0].data)) == sorted(f"cid:{i}" for i in ids)


def test_client_smil_is_kept() -> None:
    client = _part("application/smil", "pres", b"<smil><body/></smil>")
    parts = [client, _part("image/jpeg", "a"), _part("text/plain", "t")]
    assert not needs_smil(parts)
    assert ensure_smil(parts) == parts


def test_single_part_needs_no_smil() -> None:
    parts = [_part("image/jpeg", "a")]
    assert ensure_smil(parts) == parts


def test_content_ids_are_escaped() -> None:
    smil = build_smil([_part("image/jpeg", 'a"<b>&c'), _part("text/plain", "t")])
    assert 'cid:a"<b>&c' in _sources(smil)


def test_missing_content_id_is_an_error() -> None:
    with pytest.raises(ValueError, match="Content-ID"):
        build_smil([_part("image/jpeg", None)])
