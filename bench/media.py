"""Media adaptation speed against Pillow's own single save of the same decoded image.

Run from the repository root (``make bench``). Writes ``bench/results/media.json`` in the
DESIGN.md §10 format. Lower is better: the ratio is our full adaptation (decode, search,
encode) over one plain Pillow ``save()`` of the already decoded image, measured in the same
run, interleaved, median of several rounds (machines here are noisy).

Metrics:
- ``jpeg_12mp_to_300kb``: a 4000x3000 JPEG (q92) adapted to a 300 KB message; floor: one
  ``save(quality=80)`` of the decoded 12 MP image.
- ``gif_20_frames_to_600kb``: a 480x360, 20-frame animated GIF adapted to a 600 KB message;
  floor: one ``save(save_all=True)`` of the decoded frames (Pillow quantises them itself).
- ``gif_20_frames_to_600kb_prequantised``: the same, against a stricter floor that saves
  frames already reduced to a palette (no quantisation in the floor at all).
"""

from __future__ import annotations

import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageSequence  # noqa: E402

from gateway.media import MediaPart, adapt_parts  # noqa: E402
from tests.gateway import media_images  # noqa: E402

ROUNDS = 7
TARGET_RATIO = 4.0


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _measure(ours, floor) -> tuple[float, float]:
    ours(), floor()  # warm-up: imports, allocator, codec tables
    ours_times, floor_times = [], []
    for _ in range(ROUNDS):
        ours_times.append(_timed(ours))
        floor_times.append(_timed(floor))
    return statistics.median(ours_times), statistics.median(floor_times)


def _metric(ours: float, floor: float) -> dict[str, object]:
    return {
        "ours": round(ours, 5),
        "baseline": round(floor, 5),
        "unit": "s",
        "ratio": round(ours / floor, 3),
        "target": TARGET_RATIO,
        "higher_is_better": False,
    }


def bench_jpeg() -> dict[str, object]:
    data = media_images.jpeg(media_images.photo(4000, 3000), quality=92)
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    part = MediaPart(content_type="image/jpeg", data=data)

    def ours() -> None:
        if not adapt_parts([part], budget_bytes=300_000).fits:
            raise RuntimeError("the JPEG did not fit")

    def floor() -> None:
        decoded.save(io.BytesIO(), "JPEG", quality=80)

    return _metric(*_measure(ours, floor))


def bench_gif() -> tuple[dict[str, object], dict[str, object]]:
    data = media_images.animated_gif(480, 360, 20)
    with Image.open(io.BytesIO(data)) as image:
        frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
    rgb = [frame.convert("RGB") for frame in frames]
    palettised = [frame.quantize(256, method=Image.Quantize.FASTOCTREE) for frame in rgb]
    part = MediaPart(content_type="image/gif", data=data)

    def ours() -> None:
        if adapt_parts([part], budget_bytes=600_000).actions != ("adapted",):
            raise RuntimeError("the GIF was not adapted as an animation")

    def save(images: list[Image.Image]) -> None:
        images[0].save(
            io.BytesIO(), "GIF", save_all=True, append_images=images[1:], duration=80, loop=0
        )

    plain = _measure(ours, lambda: save(rgb))
    strict = _measure(ours, lambda: save(palettised))
    return _metric(*plain), _metric(*strict)


def main() -> int:
    gif, gif_strict = bench_gif()
    results = {
        "name": "media",
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, Pillow {Image.__version__}",
        "metrics": {
            "jpeg_12mp_to_300kb": bench_jpeg(),
            "gif_20_frames_to_600kb": gif,
            "gif_20_frames_to_600kb_prequantised": gif_strict,
        },
    }
    out = ROOT / "bench" / "results" / "media.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for name, metric in results["metrics"].items():  # type: ignore[union-attr]
        print(
            f"{name}: ours {metric['ours']} s, floor {metric['baseline']} s, ratio {metric['ratio']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
