"""Adaptation of real (generated) images to carrier budgets, checked by decoding the output."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import pytest
from PIL import Image, ImageChops, ImageOps, ImageSequence, ImageStat

import protocol
from gateway.media import (
    PART_OVERHEAD_BYTES,
    CorruptMediaError,
    MediaPart,
    MediaTooLargeError,
    UnsupportedMediaError,
    adapt_parts,
    animation,
)
from gateway.media.still import Where
from tests.gateway import media_images
from tests.gateway.media_images import metadata_left

KB = 1000
BUDGETS = (300 * KB, 600 * KB, 1000 * KB)
OVERHEAD = 2048


class Sample(NamedTuple):
    data: bytes
    declared: str
    size: tuple[int, int]  # as displayed (after EXIF orientation)


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    """Every sample carries metadata (EXIF with GPS, XMP, comments, text chunks, …)."""
    photo = media_images.photo
    cmyk = media_images.jpeg(
        photo(2000, 1500).convert("CMYK"),
        quality=95,
        exif=media_images.exif().tobytes(),
        comment=media_images.SENTINEL,
    )
    return {
        "photo": Sample(media_images.tagged_jpeg(photo(4000, 3000)), "image/jpeg", (4000, 3000)),
        "alpha_png": Sample(
            media_images.tagged_png(media_images.alpha_photo(1200, 900)), "image/png", (1200, 900)
        ),
        "gif": Sample(media_images.tagged_gif(480, 360, 20), "image/gif", (480, 360)),
        "cmyk": Sample(cmyk, "image/jpeg", (2000, 1500)),
        "webp": Sample(media_images.tagged_webp(photo(1600, 1200)), "image/webp", (1600, 1200)),
        "bmp": Sample(media_images.encode(photo(1600, 1200), "BMP"), "image/bmp", (1600, 1200)),
        "tiff": Sample(media_images.tiff(photo(1600, 1200)), "image/tiff", (1600, 1200)),
    }


#: What adaptation does to each sample: all are over every budget or in a type to convert
#: (images that fit as they are: see the ``stripped`` tests).
EXPECTED_ACTION = {
    "photo": "adapted",
    "alpha_png": "adapted",
    "gif": "adapted",
    "cmyk": "converted",
    "webp": "converted",
    "bmp": "converted",
    "tiff": "converted",
}


def _adapt(sample: Sample, budget: int, **options: object):
    part = MediaPart(content_type=sample.declared, data=sample.data, name="upload")
    return adapt_parts([part], budget_bytes=budget, **options)  # type: ignore[arg-type]


def test_samples_carry_metadata(samples: dict[str, Sample]) -> None:
    """The inputs really have what the outputs must not (else those checks prove nothing)."""
    for kind, sample in samples.items():
        if kind == "bmp":
            continue  # BMP has no metadata fields
        left = metadata_left(sample.data)
        assert "sentinel bytes" in left, kind
        assert kind == "gif" or "GPS" in left, kind


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("kind", ["photo", "alpha_png", "gif", "cmyk", "webp", "bmp", "tiff"])
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
    assert metadata_left(part.data) == []
    assert result.actions == (EXPECTED_ACTION[kind],)
    if kind == "gif":
        assert part.content_type == "image/gif"
        assert image.n_frames > 1
    elif kind == "alpha_png":
        assert part.content_type == "image/png"
        rgba = image.convert("RGBA")
        assert rgba.getchannel("A").getextrema() != (255, 255), "transparency was lost"
    else:
        assert part.content_type == "image/jpeg"
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert "icc_profile" not in image.info  # re-encoded: converted to sRGB, tag dropped


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


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("stored_size", [(400, 200), (3000, 1500)])
def test_exif_orientation_is_applied(budget: int, stored_size: tuple[int, int]) -> None:
    # Small (fits as is at every budget, so only the rotation forces the re-encode) and
    # large (must shrink too): rotated either way, never just stripped.
    data, stored = media_images.rotated_jpeg(*stored_size)
    result = adapt_parts([MediaPart(content_type="image/jpeg", data=data)], budget_bytes=budget)
    assert result.fits
    assert result.actions == ("adapted",)
    out = result.parts[0].data
    assert len(out) <= budget - OVERHEAD - PART_OVERHEAD_BYTES
    assert metadata_left(out) == []  # orientation tag, GPS, XMP, comment: all gone
    image = Image.open(io.BytesIO(out)).convert("RGB")
    width, height = image.size
    assert height <= stored.width
    assert abs(height / width - stored.width / stored.height) < 0.02  # portrait now
    if len(data) < budget // 2:
        assert (width, height) == (stored.height, stored.width)  # no reason to shrink
    # Orientation 6 = rotate 90° clockwise for display: the stored left (red) half on top.
    top = ImageStat.Stat(image.crop((0, 0, width, height // 3))).mean
    bottom = ImageStat.Stat(image.crop((0, 2 * height // 3, width, height))).mean
    assert top[0] > 150 > top[2]
    assert bottom[2] > 150 > bottom[0]


@pytest.mark.parametrize(("fmt", "orientation"), [("png", 8), ("jpeg", 3), ("jpeg", 5)])
def test_any_orientation_is_applied_not_stripped(fmt: str, orientation: int) -> None:
    image = media_images.photo(320, 240)
    if fmt == "png":
        data = media_images.tagged_png(image, orientation=orientation)
    else:
        data = media_images.tagged_jpeg(image, orientation=orientation)
    result = adapt_parts([MediaPart(content_type=f"image/{fmt}", data=data)], budget_bytes=300 * KB)
    assert result.actions[0] in ("adapted", "converted")  # re-encoded: it fits, but is not upright
    out = result.parts[0].data
    assert metadata_left(out) == []
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert upright.size == ((240, 320) if orientation >= 5 else (320, 240))
    assert _close(Image.open(io.BytesIO(out)).convert("RGB"), upright)


def _close(a: Image.Image, b: Image.Image) -> bool:
    """Same picture, within lossy re-encoding noise."""
    if a.size != b.size:
        return False
    diff = ImageStat.Stat(ImageChops.difference(a, b)).mean
    return max(diff) < 12


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


def _frames(data: bytes) -> list[tuple[bytes, int | None]]:
    """Every frame's RGBA pixels and duration."""
    with Image.open(io.BytesIO(data)) as image:
        return [
            (frame.convert("RGBA").tobytes(), frame.info.get("duration"))
            for frame in ImageSequence.Iterator(image)
        ]


def _stripped_inputs() -> dict[str, tuple[bytes, str, frozenset[str] | None]]:
    photo = media_images.photo(320, 240)
    native = None
    return {
        "jpeg": (media_images.tagged_jpeg(photo), "image/jpeg", native),
        "progressive_jpeg": (
            media_images.tagged_jpeg(photo, progressive=True),
            "image/jpeg",
            native,
        ),
        "mpo": (media_images.mpo(photo), "image/jpeg", native),
        "png": (media_images.tagged_png(photo), "image/png", native),
        "png_alpha": (
            media_images.tagged_png(media_images.alpha_photo(320, 240)),
            "image/png",
            native,
        ),
        "gif": (media_images.tagged_gif(), "image/gif", native),
        "webp": (
            media_images.tagged_webp(photo),
            "image/webp",
            frozenset({"image/webp", "image/jpeg"}),
        ),
    }


@pytest.mark.parametrize("policy", ["adapt", "link"])
@pytest.mark.parametrize("kind", list(_stripped_inputs()))
def test_fitting_image_is_stripped_losslessly(kind: str, policy: str) -> None:
    data, content_type, allowed = _stripped_inputs()[kind]
    assert "sentinel bytes" in metadata_left(data)
    result = adapt_parts(
        [MediaPart(content_type=content_type, data=data, content_id="img")],
        budget_bytes=300 * KB,
        allowed_types=allowed,
        policy=policy,  # type: ignore[arg-type]
    )
    assert result.fits
    assert result.actions == ("stripped",)
    (part,) = result.parts
    assert part.content_type == content_type
    assert part.content_id == "img"
    assert len(part.data) < len(data)
    assert result.adapted_bytes == len(part.data)
    assert metadata_left(part.data) == []
    # Lossless: the same pixels, frame for frame, with the same timing and loop count.
    assert _frames(part.data) == _frames(data)[: 1 if kind == "mpo" else None]
    with Image.open(io.BytesIO(data)) as before, Image.open(io.BytesIO(part.data)) as after:
        assert after.format == ("JPEG" if kind == "mpo" else before.format)
        assert after.info.get("icc_profile") == before.info.get("icc_profile")
        assert after.info.get("loop") == before.info.get("loop")
        if kind not in ("gif", "mpo"):
            assert after.info["icc_profile"] == media_images.srgb_icc()  # colour kept


def test_clean_image_is_unchanged_not_stripped() -> None:
    data = media_images.tagged_png(media_images.photo(160, 120))
    clean = adapt_parts([MediaPart(content_type="image/png", data=data)], budget_bytes=300 * KB)
    assert clean.actions == ("stripped",)
    again = adapt_parts([clean.parts[0]], budget_bytes=300 * KB)
    assert again.actions == ("unchanged",)
    assert again.parts[0].data == clean.parts[0].data


def test_stripped_size_decides_the_fit() -> None:
    # Over its share with its metadata (a big IPTC block, as photo agencies write), under
    # it without: stripped, not re-encoded.
    image = media_images.photo(320, 240)
    clean = media_images.jpeg(image, quality=85)
    iptc = media_images.jpeg_segment(0xED, b"Photoshop 3.0\x00" + bytes(len(clean) // 2))
    bulky = clean[:2] + iptc + clean[2:]
    budget = len(clean) + OVERHEAD + PART_OVERHEAD_BYTES + 1000
    assert len(bulky) > budget
    result = adapt_parts([MediaPart(content_type="image/jpeg", data=bulky)], budget_bytes=budget)
    assert result.actions == ("stripped",)
    assert result.parts[0].data == clean
    # Far over (metadata cannot be most of a file): not even tried, re-encoded.
    huge = clean[:2] + media_images.jpeg_segment(0xED, bytes(60_000)) * 2 + clean[2:]
    result = adapt_parts([MediaPart(content_type="image/jpeg", data=huge)], budget_bytes=budget)
    assert result.actions == ("adapted",)
    assert metadata_left(result.parts[0].data) == []


@pytest.mark.parametrize("kind", ["jpeg", "gif"])
def test_malformed_structure_falls_back_to_reencode(kind: str) -> None:
    if kind == "jpeg":
        data = media_images.tagged_jpeg(media_images.photo(320, 240))
        at = data.index(b"\xff\xdb")
        data = data[:at] + b"\x00\x00" + data[at:]  # stray bytes: decoders cope, walkers do not
    else:
        data = media_images.tagged_gif()[:-1]  # no trailer
    result = adapt_parts(
        [MediaPart(content_type=f"image/{kind}", data=data)], budget_bytes=300 * KB
    )
    assert result.actions == ("adapted",)
    assert metadata_left(result.parts[0].data) == []
    if kind == "gif":
        assert getattr(Image.open(io.BytesIO(result.parts[0].data)), "n_frames", 1) == 6


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_bmp_and_tiff_are_converted(fmt: str) -> None:
    photo = media_images.photo(320, 240)
    data = media_images.tiff(photo) if fmt == "TIFF" else media_images.encode(photo, "BMP")
    result = adapt_parts(
        [MediaPart(content_type="image/x-ms-bmp", data=data)], budget_bytes=300 * KB
    )
    assert result.actions == ("converted",)
    (part,) = result.parts
    assert part.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(part.data))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (320, 240))
    assert metadata_left(part.data) == []
    assert _close(image.convert("RGB"), photo)
    if fmt == "BMP":
        return  # Pillow writes no alpha channel in a BMP (BI_RGB, 32 bpp: X, not A)
    # A transparent TIFF becomes a PNG, and keeps its transparency.
    rgba = media_images.encode(media_images.alpha_photo(320, 240), fmt)
    result = adapt_parts([MediaPart(content_type="image/tiff", data=rgba)], budget_bytes=300 * KB)
    assert result.actions == ("converted",)
    assert result.parts[0].content_type == "image/png"
    out = Image.open(io.BytesIO(result.parts[0].data)).convert("RGBA")
    assert out.getchannel("A").getextrema() == (0, 255)


def test_tiff_allowed_on_the_route_is_still_stripped_by_reencoding() -> None:
    # No lossless stripper for TIFF: its GPS must not ride along because the route takes TIFF.
    data = media_images.tiff(media_images.photo(160, 120))
    result = adapt_parts(
        [MediaPart(content_type="image/tiff", data=data)],
        budget_bytes=1000 * KB,
        allowed_types=frozenset({"image/tiff", "image/jpeg"}),
    )
    assert result.actions == ("converted",)
    assert metadata_left(result.parts[0].data) == []


def test_many_frames_gif_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = media_images.many_frames_gif()  # 400 frames of 500x500: 100 M pixels decoded
    assert len(data) < 16 * KB
    decoded: list[Image.Image] = []
    real_iterator = ImageSequence.Iterator

    def counting_iterator(image: Image.Image) -> ImageSequence.Iterator:
        decoded.append(image)  # load_animation walks the frames with this
        return real_iterator(image)

    monkeypatch.setattr(ImageSequence, "Iterator", counting_iterator)
    part = MediaPart(content_type="image/gif", data=data, name="spinner.gif")
    for options in (
        {"budget_bytes": 8 * KB},
        {"budget_bytes": 300 * KB, "max_image_pixels": 10_000},
    ):
        start = time.perf_counter()
        with pytest.raises(MediaTooLargeError) as caught:
            adapt_parts([part], **options)  # type: ignore[arg-type]
        assert time.perf_counter() - start < 0.5  # decoding it takes ~0.7 s and ~380 MB
        assert caught.value.code == "media_too_large"
        assert caught.value.part == "spinner.gif"
        assert "400 frames" in str(caught.value)
        assert str(caught.value).startswith("spinner.gif:")
    assert decoded == []
    # It fits as it is: sent without decoding a single frame.
    fits = adapt_parts([part], budget_bytes=300 * KB)
    assert fits.actions == ("unchanged",)
    assert fits.parts[0].data == data
    # A route without GIF takes its first frame: one frame decoded, no cap involved.
    still = adapt_parts([part], budget_bytes=300 * KB, allowed_types=frozenset({"image/jpeg"}))
    assert still.actions == ("first_frame",)
    assert decoded == []


def test_animation_decode_cap_boundary() -> None:
    data = media_images.animated_gif(64, 48, 5)
    where = Where(index=0, name="a.gif")
    assert len(animation.load_animation(data, where=where, max_pixels=64 * 48 * 5).frames) == 5
    with pytest.raises(MediaTooLargeError, match=r"a\.gif: animation of 5 frames at 64x48"):
        animation.load_animation(data, where=where, max_pixels=64 * 48 * 5 - 1)
    assert animation.MAX_DECODE_PIXELS == 40_000_000


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


@pytest.mark.parametrize(("size", "cap"), [((4000, 3000), 1920 * 1080), ((1000, 333), 99_999)])
def test_pixel_cap_holds_after_the_edges_are_rounded(size: tuple[int, int], cap: int) -> None:
    # sqrt(cap / pixels) times each edge, rounded, can land just over the cap (4000x3000
    # under 1920x1080 came out 1663x1247 = 2,073,761 pixels).
    data = media_images.jpeg(media_images.photo(*size), quality=80)
    result = adapt_parts(
        [MediaPart(content_type="image/jpeg", data=data)],
        budget_bytes=50_000 * KB,
        max_image_pixels=cap,
    )
    image = Image.open(io.BytesIO(result.parts[0].data))
    assert image.size[0] * image.size[1] <= cap
    assert image.size[0] * image.size[1] >= 0.99 * cap


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


def test_animated_webp_stays_animated_as_gif() -> None:
    data = media_images.animated_webp()
    result = adapt_parts([MediaPart(content_type="image/webp", data=data)], budget_bytes=300 * KB)
    assert result.actions == ("converted",)
    assert result.parts[0].content_type == "image/gif"
    out = Image.open(io.BytesIO(result.parts[0].data))
    assert getattr(out, "n_frames", 1) == 6
    assert out.info.get("loop") == 0


@pytest.mark.parametrize("kind", ["gif", "webp"])
@pytest.mark.parametrize("allow", [True, False])
def test_allow_first_frame_is_honoured(kind: str, allow: bool) -> None:
    data = media_images.tagged_gif() if kind == "gif" else media_images.animated_webp()
    part = MediaPart(content_type=f"image/{kind}", data=data)
    # Too small a budget to stay animated, and a route that takes no GIF at all.
    small = adapt_parts([part], budget_bytes=12 * KB, allow_first_frame=allow)
    no_gif = adapt_parts(
        [part],
        budget_bytes=300 * KB,
        allowed_types=frozenset({"image/jpeg", "image/png"}),
        allow_first_frame=allow,
    )
    for result in (small, no_gif):
        if allow:
            assert result.fits
            assert result.actions == ("first_frame",)
            image = Image.open(io.BytesIO(result.parts[0].data))
            assert getattr(image, "n_frames", 1) == 1
            assert metadata_left(result.parts[0].data) == []
        else:
            assert not result.fits
            assert result.actions == ("too_large",)
            assert result.parts[0].data == data  # the original, for the link fallback


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
