"""SMIL presentations for multi-part MMS: generated when the client gave none.

Theory of operation: handsets lay out an MMS from its SMIL part; without one, most show
the parts as bare attachments. We build the OMA MMS conformance layout (an ``Image``
region above a ``Text`` region, one ``<par>`` slide per visual part) referencing parts by
``cid:`` Content-ID. A client-provided SMIL part is always kept as is.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from lxml import etree

from gateway.media.part import MediaPart
from gateway.media.sniff import split_content_type

if TYPE_CHECKING:
    from collections.abc import Sequence

SMIL_CONTENT_TYPE: Final = "application/smil"
SMIL_CONTENT_ID: Final = "smil"
#: How long a slide without audio or video stays on screen.
SLIDE_DURATION: Final = "5000ms"

_EXTENSIONS: Final = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "text/plain": "txt",
    "text/vcard": "vcf",
    "audio/amr": "amr",
    "audio/amr-wb": "awb",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/3gpp": "3gp",
    "video/3gpp": "3gp",
    "video/mp4": "mp4",
}


def is_smil(part: MediaPart) -> bool:
    media_type = split_content_type(part.content_type)[0]
    return media_type in (SMIL_CONTENT_TYPE, "application/smil+xml")


def needs_smil(parts: Sequence[MediaPart]) -> bool:
    """Several parts and none of them SMIL."""
    return len(parts) > 1 and not any(is_smil(p) for p in parts)


def with_content_ids(parts: Sequence[MediaPart]) -> list[MediaPart]:
    """Give every part without a Content-ID a deterministic one (``part2.jpg``)."""
    taken = {p.content_id for p in parts if p.content_id}
    out: list[MediaPart] = []
    for index, part in enumerate(parts):
        if part.content_id:
            out.append(part)
            continue
        media_type = split_content_type(part.content_type)[0]
        candidate, n = f"part{index}.{_EXTENSIONS.get(media_type, 'bin')}", 0
        while candidate in taken:
            n += 1
            candidate = f"part{index}-{n}.{_EXTENSIONS.get(media_type, 'bin')}"
        taken.add(candidate)
        out.append(dataclasses.replace(part, content_id=candidate))
    return out


def _slides(parts: Sequence[MediaPart]) -> list[dict[str, str]]:
    """Group parts into slides: one per visual, text and audio joining the first free one."""
    slides: list[dict[str, str]] = []

    def place(role: str, cid: str) -> None:
        for slide in slides:
            if role not in slide:
                slide[role] = cid
                return
        slides.append({role: cid})

    visuals = [
        p
        for p in parts
        if split_content_type(p.content_type)[0].split("/")[0] in ("image", "video")
    ]
    slides.extend({"visual": p.content_id or ""} for p in visuals)
    for part in parts:
        media_type = split_content_type(part.content_type)[0]
        if part in visuals or is_smil(part):
            continue
        if media_type == "text/plain":
            place("text", part.content_id or "")
        elif media_type.startswith("audio/"):
            place("audio", part.content_id or "")
        else:
            place("ref", part.content_id or "")
    return slides


def build_smil(parts: Sequence[MediaPart]) -> bytes:
    """A SMIL document presenting ``parts`` (which must all have Content-IDs).

    Raises:
        ValueError: a part has no Content-ID (use :func:`with_content_ids` first).
    """
    if any(not p.content_id for p in parts):
        raise ValueError("every part needs a Content-ID to be referenced from SMIL")
    kinds = {cid: split_content_type(p.content_type)[0] for p in parts if (cid := p.content_id)}
    root = etree.Element("smil")
    layout = etree.SubElement(etree.SubElement(root, "head"), "layout")
    etree.SubElement(layout, "root-layout", width="100%", height="100%")
    etree.SubElement(
        layout, "region", id="Image", top="0%", left="0%", width="100%", height="70%", fit="meet"
    )
    etree.SubElement(
        layout, "region", id="Text", top="70%", left="0%", width="100%", height="30%", fit="scroll"
    )
    body = etree.SubElement(root, "body")
    for slide in _slides(parts):
        timed = "audio" in slide or kinds.get(slide.get("visual", ""), "").startswith("video/")
        par = (
            etree.SubElement(body, "par")
            if timed
            else etree.SubElement(body, "par", dur=SLIDE_DURATION)
        )
        if cid := slide.get("visual"):
            tag = "video" if kinds[cid].startswith("video/") else "img"
            etree.SubElement(par, tag, src=f"cid:{cid}", region="Image")
        if cid := slide.get("text"):
            etree.SubElement(par, "text", src=f"cid:{cid}", region="Text")
        if cid := slide.get("audio"):
            etree.SubElement(par, "audio", src=f"cid:{cid}")
        if cid := slide.get("ref"):
            etree.SubElement(par, "ref", src=f"cid:{cid}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def ensure_smil(parts: Sequence[MediaPart]) -> list[MediaPart]:
    """``parts`` with a generated SMIL part first when they need one, else unchanged.

    Parts without a Content-ID get one (see :func:`with_content_ids`) when SMIL is added.
    A client-provided SMIL part is kept untouched.
    """
    if not needs_smil(parts):
        return list(parts)
    named = with_content_ids(parts)
    smil = MediaPart(
        content_type=SMIL_CONTENT_TYPE,
        data=build_smil(named),
        content_id=_free_id(SMIL_CONTENT_ID, named),
        name="smil",
    )
    return [smil, *named]


def _free_id(wanted: str, parts: Sequence[MediaPart]) -> str:
    taken = {p.content_id for p in parts}
    candidate, n = wanted, 0
    while candidate in taken:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate
