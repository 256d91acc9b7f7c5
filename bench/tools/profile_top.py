"""Top frames by self time from py-spy's collapsed stacks (``py-spy record --format raw``).

Usage: ``python bench/tools/profile_top.py FILE [N] [--lines]``. Each line of FILE is
``frame;frame;...;leaf COUNT`` with frames like ``name (file.py:line)``; a frame's self
time is the samples where it is the leaf, its total the samples whose stack holds it.
Frames are merged per function (``--lines``: per source line). Prints the top N (default
15) by self time, as a share of all samples, for the issue note and the report.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def function_of(frame: str) -> str:
    """``name (path/file.py:123)`` -> ``name (path/file.py)``."""
    head, colon, line = frame.rpartition(":")
    return f"{head})" if colon and line.rstrip(")").isdigit() else frame


def tops(lines: list[str], *, by_line: bool = False) -> tuple[Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if not by_line:
            frames = [function_of(frame) for frame in frames]
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    return own, total, samples


def main(argv: list[str]) -> int:
    by_line = "--lines" in argv
    args = [a for a in argv if a != "--lines"]
    path = Path(args[0])
    limit = int(args[1]) if len(args) > 1 else 15
    own, total, samples = tops(path.read_text(encoding="utf-8").splitlines(), by_line=by_line)
    print(f"{samples} samples")
    print(f"{'self %':>7} {'total %':>8}  frame")
    for frame, n in own.most_common(limit):
        print(f"{100 * n / samples:7.1f} {100 * total[frame] / samples:8.1f}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
