"""Adaptation of real (generated) images to carrier budgets, checked by decoding the output."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import pytest
from PIL import Image, ImageSequence

from gateway.media import (
    PART_OVERHEAD_BYTES,
    CorruptMediaError,
    MediaPart,
    UnsupportedMediaError,
    adapt_parts,
)
from tests.gateway import media_images

KB = 1000
BUDGETS = (300 * KB, 600 * KB, 1000 * KB)
OVERHEAD = 2048


class Sample(NamedTuple):
    data: bytes
    declared: str
    size: tuple[int, int]  # as displayed (after EXIF orientation)


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    gif = media_images.animated_gif()
    return {
        "photo": Sample(
            media_images.jpeg(media_images.photo(4000, 3000)), "image/jpeg", (4000, 3000)
        ),
        "alpha_png": Sample(media_images.png_with_alpha(1200, 900), "image/png", (1200, 900)),
        "gif": Sample(gif, "image/gif", (480, 360)),
        "cmyk": Sample(media_images.cmyk_jpeg(2000, 1500), "image/jpeg", (2000, 1500)),
        "webp": Sample(media_images.webp(1600, 1200), "image/webp", (1600, 1200)),
    }


def _adapt(sample: Sample, budget: int, **options: object):
    part = MediaPart(content_type=sample.declared, data=sample.data, name="upload")
    return adapt_parts([part], budget_bytes=budget, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("kind", ["photo", "alpha_png", "gif", "cmyk", "webp"])
def test_adapted_image_fits_and_decodes(samples: dict[str, Sample], kind: str, budget: int) -> None:
    sample = samples[kind]
    result = _adapt(sample, budget)
    (part,) = result.parts
    available = budget - OVERHEAD - PART_OVERHEAD_BYTES
    assert result.fits
    assert len(part.data) == result.adapted_bytes <= available
    image = Image.open(io.BytesIO(part.data))
    image.load()
    assert image.size[0] <= sample.size[0]
    assert image.size[1] <= sample.size[1]
    if len(sample.data) > 2 * budget:
        # Far too big at first: the search must land close to the budget, not far under.
        assert len(part.data) >= available // 2
    if kind == "gif":
        assert part.content_type == "image/gif"
        assert image.n_frames > 1
        assert result.actions == ("adapted",) if len(sample.data) > available else ("unchanged",)
    elif kind == "alpha_png":
        assert part.content_type == "image/png"
        rgba = image.convert("RGBA")
        assert rgba.getchannel("A").getextrema() != (255, 255), "transparency was lost"
    else:
        assert part.content_type == "image/jpeg"
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert "exif" not in image.info
        assert "icc_profile" not in image.info


def test_gif_keeps_frames_timing(samples: dict[str, Sample]) -> None:
    sample = samples["gif"]
    result = _adapt(sample, 600 * KB)
    out = Image.open(io.BytesIO(result.parts[0].data))
    durations = [frame.info["duration"] for frame in ImageSequence.Iterator(out)]
    # Frames are kept or dropped evenly, and the animation lasts as long as before.
    assert sum(durations) == 20 * 80
    assert out.info.get("loop") == 0


def test_webp_and_cmyk_are_converted(samples: dict[str, Sample]) -> None:
    assert _adapt(samples["webp"], 10_000 * KB).actions == ("converted",)
    # CMYK JPEG is re-encoded as RGB JPEG even when it would fit as is.
    cmyk = _adapt(samples["cmyk"], 10_000 * KB)
    assert cmyk.actions == ("converted",)
    assert Image.open(io.BytesIO(cmyk.parts[0].data)).mode == "RGB"


def test_exif_orientation_is_applied() -> None:
    data, stored = media_images.rotated_jpeg()
    result = adapt_parts([MediaPart(content_type="image/jpeg", data=data)], budget_bytes=300 * KB)
    assert result.actions == ("adapted",)
    image = Image.open(io.BytesIO(result.parts[0].data)).convert("RGB")
    assert image.size == (stored.height, stored.width)
    assert 0x0112 not in image.getexif()
    # Orientation 6 = rotate 90° clockwise for display: the stored left (red) half on top.
    top, bottom = image.getpixel((100, 60)), image.getpixel((100, 340))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 200
    assert top[2] < 60
    assert bottom[2] > 200
    assert bottom[0] < 60


@pytest.mark.parametrize("kind", ["photo", "gif", "alpha_png"])
def test_deterministic(samples: dict[str, Sample], kind: str) -> None:
    first = _adapt(samples[kind], 300 * KB)
    second = _adapt(samples[kind], 300 * KB)
    assert first.parts[0].data == second.parts[0].data


def test_small_image_passes_through_untouched() -> None:
    data = media_images.jpeg(media_images.photo(320, 240), quality=80)
    part = MediaPart(content_type="image/jpg", data=data, content_id="img")
    result = adapt_parts([part], budget_bytes=300 * KB)
    assert result.actions == ("unchanged",)
    assert result.parts[0].data == data
    assert result.parts[0].content_type == "image/jpeg"  # the label is corrected
    assert result.parts[0].content_id == "img"


def test_pixel_cap_downscales_even_under_budget() -> None:
    data = media_images.jpeg(media_images.photo(1600, 1200), quality=80)
    result = adapt_parts(
        [MediaPart(content_type="image/jpeg", data=data)],
        budget_bytes=5000 * KB,
        max_image_pixels=640 * 480,
    )
    image = Image.open(io.BytesIO(result.parts[0].data))
    assert result.actions == ("adapted",)
    assert image.size[0] * image.size[1] <= 640 * 480
    assert image.size[0] >= 630  # capped, not shrunk further than needed


def test_route_without_gif_gets_first_frame(samples: dict[str, Sample]) -> None:
    result = _adapt(samples["gif"], 600 * KB, allowed_types=frozenset({"image/jpeg", "image/png"}))
    assert result.actions == ("first_frame",)
    image = Image.open(io.BytesIO(result.parts[0].data))
    assert image.format == "JPEG"
    assert getattr(image, "n_frames", 1) == 1


def test_first_frame_not_allowed_means_no_fit(samples: dict[str, Sample]) -> None:
    result = _adapt(samples["gif"], 20 * KB, allow_first_frame=False)
    assert not result.fits
    assert result.actions == ("too_large",)
    assert result.parts[0].data == samples["gif"].data  # originals, for the link fallback


def test_gif_first_frame_when_animation_cannot_fit(samples: dict[str, Sample]) -> None:
    result = _adapt(samples["gif"], 20 * KB)
    assert result.fits
    assert result.actions == ("first_frame",)


@pytest.mark.parametrize("policy", ["link", "reject"])
def test_non_adapting_policies_report_no_fit(samples: dict[str, Sample], policy: str) -> None:
    result = _adapt(samples["photo"], 300 * KB, policy=policy)
    assert not result.fits
    assert result.parts[0].data == samples["photo"].data
    assert result.original_bytes == len(samples["photo"].data)


def test_link_policy_still_converts_what_the_route_needs() -> None:
    data = media_images.webp(320, 240)
    result = adapt_parts(
        [MediaPart(content_type="image/webp", data=data)], budget_bytes=300 * KB, policy="link"
    )
    assert result.fits
    assert result.actions == ("converted",)
    assert result.parts[0].content_type == "image/jpeg"


def test_text_and_audio_count_against_the_budget(samples: dict[str, Sample]) -> None:
    audio = MediaPart(content_type="audio/amr", data=b"#!AMR\n" + bytes(100 * KB))
    text = MediaPart(content_type="text/plain; charset=utf-8", data="héllo".encode())
    photo = MediaPart(content_type="image/jpeg", data=samples["photo"].data)
    result = adapt_parts([text, photo, audio], budget_bytes=300 * KB)
    assert result.fits
    assert result.actions == ("unchanged", "adapted", "unchanged")
    assert result.parts[0].data == text.data
    assert result.parts[2].data == audio.data
    assert result.adapted_bytes <= 300 * KB - OVERHEAD - 3 * PART_OVERHEAD_BYTES
    too_much = adapt_parts([audio], budget_bytes=50 * KB)
    assert not too_much.fits


def test_two_images_share_the_budget(samples: dict[str, Sample]) -> None:
    parts = [
        MediaPart(content_type="image/jpeg", data=samples["photo"].data, content_id="a"),
        MediaPart(content_type="image/webp", data=samples["webp"].data, content_id="b"),
    ]
    result = adapt_parts(parts, budget_bytes=600 * KB, add_smil=True)
    assert result.fits
    assert result.actions == ("generated", "adapted", "converted")
    assert result.parts[0].content_type == "application/smil"
    assert b"cid:a" in result.parts[0].data
    assert b"cid:b" in result.parts[0].data
    total = sum(len(p.data) for p in result.parts)
    assert total <= 600 * KB - OVERHEAD - 3 * PART_OVERHEAD_BYTES
    assert total >= 400 * KB


def test_adapted_message_really_encodes_under_budget(samples: dict[str, Sample]) -> None:
    protocol = pytest.importorskip("protocol")
    budget = 300 * KB
    parts = [
        MediaPart(content_type="text/plain", data=b"Hello from the gateway", content_id="text"),
        MediaPart(content_type="image/jpeg", data=samples["photo"].data, content_id="photo"),
    ]
    result = adapt_parts(parts, budget_bytes=budget, add_smil=True)
    attachments = tuple(
        protocol.Attachment(content_type=p.content_type, data=p.data, content_id=p.content_id)
        for p in result.parts
    )
    request = protocol.SubmitReq(
        transaction_id="t-1",
        sender_identification=protocol.SenderIdentification(vasp_id="vasp", vas_id="vas"),
        recipients=protocol.Recipients(to=(protocol.Address.number("+14165550100"),)),
        subject="hello",
        attachments=(
            protocol.Attachment(
                content_type='multipart/related; type="application/smil"; start="<smil>"',
                content_id="mm7-content",
                parts=attachments,
            ),
        ),
    )
    _, body = protocol.encode(request)
    assert len(body) <= budget
    assert len(body) >= budget * 0.9


def test_truncated_jpeg_is_corrupt() -> None:
    data = media_images.jpeg(media_images.photo(800, 600))
    with pytest.raises(CorruptMediaError) as caught:
        adapt_parts(
            [MediaPart(content_type="image/jpeg", data=data[: len(data) // 2], name="cat.jpg")],
            budget_bytes=300 * KB,
        )
    assert caught.value.code == "corrupt_media"
    assert caught.value.part == "cat.jpg"


def test_route_type_restriction_for_audio() -> None:
    audio = MediaPart(content_type="audio/amr", data=b"#!AMR\n" + bytes(100))
    with pytest.raises(UnsupportedMediaError) as caught:
        adapt_parts([audio], budget_bytes=300 * KB, allowed_types=frozenset({"image/jpeg"}))
    assert caught.value.code == "unsupported_media"
    assert caught.value.part == "media[0]"


def test_base64_transfer_encoding_budget(samples: dict[str, Sample]) -> None:
    result = _adapt(samples["photo"], 300 * KB, transfer_encoding="base64")
    encoded = len(result.parts[0].data) * 4 / 3 * 78 / 76
    assert encoded <= 300 * KB - OVERHEAD - PART_OVERHEAD_BYTES


def test_thread_safe_in_an_executor(samples: dict[str, Sample]) -> None:
    jobs = [("photo", 300 * KB), ("gif", 600 * KB), ("webp", 300 * KB)] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: _adapt(samples[job[0]], job[1]), jobs))
    for (kind, budget), result in zip(jobs, results, strict=True):
        assert result.parts == _adapt(samples[kind], budget).parts
