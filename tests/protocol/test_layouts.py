"""protocol/layouts.py must equal the element layouts re-extracted from the official XSDs."""

from __future__ import annotations

import pytest

from protocol import MESSAGE_TYPES, VERSIONS
from protocol.layouts import LAYOUTS
from tests.conftest import shared_mm7_path
from tests.protocol.xsd import extract_layouts


def test_every_version_has_a_layout() -> None:
    assert tuple(LAYOUTS) == VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
def test_layout_matches_official_schema(version: str) -> None:
    shared_mm7_path()
    extracted = extract_layouts(version)
    assert set(extracted) == set(LAYOUTS[version])
    for tag, layout in extracted.items():
        assert LAYOUTS[version][tag] == layout, f"{version} {tag}"


@pytest.mark.parametrize("version", VERSIONS)
def test_extended_messages_only_in_rel6_1_4(version: str) -> None:
    extended = {t for t in LAYOUTS[version] if t.startswith("extended")}
    if version == "REL-6-MM7-1-4":
        assert extended == {
            "extendedCancelReq",
            "extendedCancelRsp",
            "extendedReplaceReq",
            "extendedReplaceRsp",
        }
    else:
        assert extended == set()


@pytest.mark.parametrize("version", VERSIONS)
def test_every_layout_element_maps_to_a_field(version: str) -> None:
    for tag, layout in LAYOUTS[version].items():
        cls = MESSAGE_TYPES[tag]
        for element, _required in layout:
            assert element in cls.ELEMENTS, f"{tag}.{element} has no field"
