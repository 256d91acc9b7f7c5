"""Real images for the media tests, generated with Pillow (no fixtures, no numpy).

Noise plus gradients give photo-like entropy: JPEG and GIF sizes behave like a camera
picture's, not like a flat colour's.
"""

from __future__ import annotations

import functools
import io
import struct

from PIL import Image, ImageCms, ImageDraw, ImageSequence, PngImagePlugin

_BICUBIC = Image.Resampling.BICUBIC


def photo(width: int, height: int) -> Image.Image:
    """An RGB 'photo': smooth gradients, blotches and fine grain."""
    coarse = Image.effect_noise((max(1, width // 8), max(1, height // 8)), 60).resize(
        (width, height), _BICUBIC
    )
    fine = Image.effect_noise((width, height), 30)
    gradient = Image.linear_gradient("L").resize((width, height))
    red = Image.blend(gradient, coarse, 0.6)
    green = Image.blend(coarse, fine, 0.3)
    blue = Image.blend(gradient.transpose(Image.Transpose.ROTATE_180), fine, 0.4)
    return Image.merge("RGB", (red, green, blue))


def jpeg(image: Image.Image, quality: int = 92, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **options)
    return buffer.getvalue()


def alpha_photo(width: int, height: int) -> Image.Image:
    """RGBA with a real alpha ramp (transparent to opaque) over a photo."""
    rgba = photo(width, height).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").rotate(90).resize((width, height)))
    return rgba


def png_with_alpha(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    alpha_photo(width, height).save(buffer, "PNG")
    return buffer.getvalue()


def animated_gif(width: int = 480, height: int = 360, frames: int = 20) -> bytes:
    """A moving disc over a noisy background, every frame different."""
    background = photo(width, height)
    images = []
    for i in range(frames):
        frame = background.copy()
        left = i * width // frames
        ImageDraw.Draw(frame).ellipse(
            (left, height // 3, left + width // 5, height // 3 + height // 4),
            fill=(255, (40 * i) % 255, 0),
        )
        images.append(frame.quantize(256, method=Image.Quantize.FASTOCTREE))
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return buffer.getvalue()


def cmyk_jpeg(width: int, height: int) -> bytes:
    return jpeg(photo(width, height).convert("CMYK"), quality=95)


def rotated_jpeg(width: int = 400, height: int = 200) -> tuple[bytes, Image.Image]:
    """Stored left half red, right half blue (with grain), EXIF orientation 6 (90° CW).

    It carries all the metadata of :func:`tagged_jpeg` too (GPS, XMP, comment, …).
    """
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    image = Image.blend(image, photo(width, height), 0.2)
    return tagged_jpeg(image, orientation=6, quality=95), image


def webp(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    photo(width, height).save(buffer, "WEBP", quality=90)
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# -- images that carry metadata ----------------------------------------------------------

#: Written into every piece of metadata below: no output may contain it.
SENTINEL = b"SENTINEL-do-not-leak"
#: Where the photos were "taken" (Toronto), as EXIF GPS rationals.
GPS_LATITUDE = (43.0, 39.0, 12.5)


@functools.cache
def srgb_icc() -> bytes:
    """An ICC profile (sRGB) to check that colour profiles survive a lossless strip.

    Cached: LittleCMS stamps each new profile with the current time.
    """
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif(orientation: int = 1) -> Image.Exif:
    """EXIF with a camera, a description, an orientation and a GPS position."""
    tags = Image.Exif()
    tags[0x010F] = "SentinelCam"  # Make
    tags[0x010E] = SENTINEL.decode()  # ImageDescription
    tags[0x0112] = orientation
    gps = tags.get_ifd(0x8825)
    gps.update({1: "N", 2: GPS_LATITUDE, 3: "W", 4: (79.0, 23.0, 1.0)})
    return tags


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description>'
    + SENTINEL
    + b"</rdf:Description></x:xmpmeta>"
)


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def tagged_jpeg(
    image: Image.Image, *, orientation: int = 1, quality: int = 92, progressive: bool = False
) -> bytes:
    """A JPEG full of metadata: EXIF (GPS, orientation), XMP, comment, ICC, IPTC, an APP12
    block, a comment between progressive scans and a secondary image after EOI."""
    data = jpeg(
        image,
        quality=quality,
        exif=exif(orientation).tobytes(),
        xmp=XMP,
        comment=SENTINEL,
        icc_profile=srgb_icc(),
        progressive=progressive,
    )
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", 24)
    iptc += b"\x1c\x02\x78" + struct.pack(">H", len(SENTINEL)) + SENTINEL + b"\x00"
    extra = jpeg_segment(0xED, iptc) + jpeg_segment(0xEC, b"Ducky\x00" + SENTINEL)
    data = data[:2] + extra + data[2:]
    if progressive:  # a comment before the second scan
        second = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
        data = data[:second] + jpeg_segment(0xFE, SENTINEL) + data[second:]
    # What phones append after EOI: another JPEG (a depth map) with its own EXIF.
    trailer = jpeg(Image.new("L", (16, 16), 128), exif=exif().tobytes())
    return data + trailer


def tagged_png(image: Image.Image, *, orientation: int = 1) -> bytes:
    """A PNG with tEXt, zTXt, iTXt (XMP), eXIf (GPS), tIME and an iCCP profile."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SENTINEL.decode())
    info.add_text("Description", SENTINEL.decode() * 4, zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add(b"tIME", struct.pack(">HBBBBB", 2026, 1, 2, 3, 4, 5))
    info.add(b"prIV", SENTINEL)  # a private ancillary chunk
    buffer = io.BytesIO()
    image.save(
        buffer, "PNG", pnginfo=info, exif=exif(orientation).tobytes(), icc_profile=srgb_icc()
    )
    return buffer.getvalue()


def tagged_gif(width: int = 160, height: int = 120, frames: int = 6) -> bytes:
    """An animated GIF (looping) with a comment and an XMP application extension."""
    data = animated_gif(width, height, frames)
    packed = data[10]
    start = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    comment = b"\x21\xfe" + bytes((len(SENTINEL),)) + SENTINEL + b"\x00"
    xmp = b"\x21\xff\x0bXMP DataXMP" + bytes((len(XMP),)) + XMP + b"\x00"
    return data[:start] + comment + xmp + data[start:]


def tagged_webp(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=90, exif=exif().tobytes(), xmp=XMP, icc_profile=srgb_icc())
    return buffer.getvalue()


def animated_webp(width: int = 160, height: int = 120, frames: int = 6) -> bytes:
    with Image.open(io.BytesIO(animated_gif(width, height, frames))) as gif:
        images = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    buffer = io.BytesIO()
    images[0].save(
        buffer, "WEBP", save_all=True, append_images=images[1:], duration=80, loop=0, quality=80
    )
    return buffer.getvalue()


def mpo(image: Image.Image) -> bytes:
    """A JPEG with a secondary image (MPF), as phones write depth or gain maps."""
    second = Image.new("RGB", image.size, (128, 128, 128))
    buffer = io.BytesIO()
    image.save(buffer, "MPO", save_all=True, append_images=[second], exif=exif().tobytes())
    return buffer.getvalue()


def many_frames_gif(frames: int = 400, size: int = 500) -> bytes:
    """A small file that decodes huge: one full frame, then ``frames - 1`` 1x1 updates.

    Every frame is composited to the whole canvas when decoded: 400 frames of 500x500
    are 100 million pixels from about 11 KB.
    """
    first = Image.new("P", (size, size), 0)
    first.putpalette([0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255])
    buffer = io.BytesIO()
    first.save(buffer, "GIF", loop=0, duration=40)
    head = buffer.getvalue()[:-1]  # without the trailer
    tail = []
    for i in range(1, frames):
        x, y = i % size, i // size
        control = b"\x21\xf9\x04\x04\x04\x00\x00\x00"  # keep previous, 40 ms
        descriptor = b"\x2c" + struct.pack("<HHHH", x, y, 1, 1) + b"\x00"
        # LZW (minimum code size 2): clear, pixel 1, end, in 3-bit codes.
        tail.append(control + descriptor + b"\x02\x02\x4c\x01\x00")
    return head + b"".join(tail) + b";"


def tiff(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "TIFF", exif=exif().tobytes())  # uncompressed: what scanners write
    return buffer.getvalue()


def metadata_left(data: bytes) -> list[str]:
    """What metadata ``data`` (an encoded image) still carries; empty when clean."""
    found = []
    if SENTINEL in data:
        found.append("sentinel bytes")
    with Image.open(io.BytesIO(data)) as image:
        tags = image.getexif()
        if tags.get_ifd(0x8825) or 0x8825 in tags:
            found.append("GPS")
        if tags:
            found.append(f"EXIF tags {sorted(tags)}")
        keys = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "mp")
        found.extend(key for key in keys if image.info.get(key))
        if getattr(image, "text", None):
            found.append("PNG text")
        if getattr(image, "n_frames", 1) > 1 and image.format == "MPO":
            found.append("MPO secondary image")
    return found
