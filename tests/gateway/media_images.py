"""Real images for the media tests, generated with Pillow (no fixtures, no numpy).

Noise plus gradients give photo-like entropy: JPEG and GIF sizes behave like a camera
picture's, not like a flat colour's.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

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


def png_with_alpha(width: int, height: int) -> bytes:
    """RGBA with a real alpha ramp (transparent to opaque) over a photo."""
    rgba = photo(width, height).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").rotate(90).resize((width, height)))
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG")
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


def rotated_jpeg() -> tuple[bytes, Image.Image]:
    """400x200 stored, left half red, right half blue, EXIF orientation 6 (90° CW)."""
    image = Image.new("RGB", (400, 200), (255, 0, 0))
    image.paste((0, 0, 255), (200, 0, 400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg(image, quality=95, exif=exif.tobytes()), image


def webp(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    photo(width, height).save(buffer, "WEBP", quality=90)
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()
