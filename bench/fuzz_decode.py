"""Long-running fuzz target for ``protocol.decode``: only a Message or a ProtocolError may
come out, whatever the bytes.

Two ways to run it:

* ``python bench/fuzz_decode.py --atheris [libFuzzer flags...]`` — coverage-guided with
  atheris (``pip install atheris``; not a project dependency, and it may not build on
  every Python). Seeds: ``fixtures/mm7`` and, when present, ``../shared/mm7/samples``.
  Example: ``python bench/fuzz_decode.py --atheris -max_total_time=600 -timeout=5``.
* ``python bench/fuzz_decode.py [--seconds N]`` (what ``make bench`` runs) — a bounded
  mutation fuzzer on the standard library: the same seeds, mutated by byte flips, cuts,
  duplications, splices and metacharacter insertions for N seconds (default 10). It also
  measures decode's rate on mutated (hostile) input against its rate on the unmutated
  seeds — garbage must not cost more than valid traffic (no algorithmic blow-up) — and
  writes ``bench/results/fuzz_decode.json`` (DESIGN.md §10). Any other exception is
  written to ``bench/results/fuzz_decode_crash.bin`` and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import random
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protocol import Message, ProtocolError, decode  # noqa: E402
from protocol.capture import split_http_message  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SEED_DIRS = (ROOT / "fixtures" / "mm7", ROOT.parent / "shared" / "mm7" / "samples")
CONTENT_TYPES = (
    None,
    "text/xml",
    'multipart/related; boundary="b"; type="text/xml"; start="<soap>"',
    "multipart/related",
)
TOKENS = (b"\r\n", b"--", b"<", b">", b"&", b"]]>", b"\xff", b"\x00", b":", b'"', b"<!DOCTYPE x>")


def seeds() -> list[tuple[str | None, bytes]]:
    corpus: list[tuple[str | None, bytes]] = []
    for folder in SEED_DIRS:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix == ".json":
                continue
            try:
                _, headers, body = split_http_message(path.read_bytes())
            except ProtocolError:
                continue
            corpus.append((headers.get("content-type"), body))
    return corpus


class FuzzFindingError(Exception):
    """decode broke its contract on some input."""


def one_input(body: bytes, content_type: str | None) -> None:
    """The property: a Message, or a ProtocolError carrying an int status code."""
    try:
        message = decode(body, content_type)
    except ProtocolError as exc:
        if not isinstance(getattr(exc, "status_code", None), int):
            raise FuzzFindingError(f"{type(exc).__name__} without a status code") from exc
        return
    if not isinstance(message, Message):
        raise FuzzFindingError(f"decode returned {type(message).__name__}")


def mutate(rng: random.Random, corpus: list[tuple[str | None, bytes]]) -> tuple[str | None, bytes]:
    content_type, body = rng.choice(corpus)
    data = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(max(len(data), 1))
        action = rng.randrange(6)
        if action == 0 and data:
            data[pos] = rng.randrange(256)
        elif action == 1:
            del data[pos : pos + rng.randint(1, 200)]
        elif action == 2:
            data[pos:pos] = data[pos : pos + rng.randint(1, 200)]
        elif action == 3:
            data[pos:pos] = rng.choice(TOKENS)
        elif action == 4:
            other = rng.choice(corpus)[1]
            start = rng.randrange(max(len(other), 1))
            data[pos:pos] = other[start : start + rng.randint(1, 400)]
        else:
            del data[pos:]
    if rng.random() < 0.2:
        content_type = rng.choice(CONTENT_TYPES)
    return content_type, bytes(data)


def _rate(inputs: list[tuple[str | None, bytes]]) -> float:
    started = time.perf_counter()
    for content_type, body in inputs:
        one_input(body, content_type)
    return len(inputs) / (time.perf_counter() - started)


def run_atheris(argv: list[str]) -> int:
    try:
        atheris = importlib.import_module("atheris")
    except ImportError:
        print("atheris is not installed: pip install atheris (or run without --atheris)")
        return 2
    corpus = seeds()

    def target(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        content_type = CONTENT_TYPES[provider.ConsumeIntInRange(0, len(CONTENT_TYPES) - 1)]
        if corpus and provider.ConsumeBool():
            # Splice fuzzer bytes into a real capture, so deep code paths are reachable.
            seed_type, seed = corpus[provider.ConsumeIntInRange(0, len(corpus) - 1)]
            cut = provider.ConsumeIntInRange(0, len(seed))
            body = (
                seed[:cut]
                + provider.ConsumeBytes(512)
                + seed[cut + provider.ConsumeIntInRange(0, 64) :]
            )
            content_type = seed_type if provider.ConsumeBool() else content_type
        else:
            body = provider.ConsumeBytes(provider.remaining_bytes())
        one_input(body, content_type)

    atheris.Setup([sys.argv[0], *argv], target)
    atheris.Fuzz()
    return 0


def run_bounded(seconds: float, seed: int) -> int:
    corpus = seeds()
    if not corpus:
        print("no seed inputs found")
        return 1
    rng = random.Random(seed)
    inputs = [mutate(rng, corpus) for _ in range(2000)]
    executed = 0
    decode_seconds = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        content_type, body = mutate(rng, corpus)
        started = time.perf_counter()
        try:
            one_input(body, content_type)
        except Exception:  # any other exception is a finding: the whole point
            crash = RESULTS / "fuzz_decode_crash.bin"
            crash.parent.mkdir(parents=True, exist_ok=True)
            crash.write_bytes(body)
            traceback.print_exc()
            print(f"content type {content_type!r}; input saved to {crash}")
            return 1
        decode_seconds += time.perf_counter() - started
        executed += 1
    # Rate on a fixed sample of mutated input vs on the valid seeds it was made from.
    ours = _rate(inputs)
    baseline = _rate([corpus[i % len(corpus)] for i in range(len(inputs))])
    machine = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    result = {
        "name": "fuzz_decode",
        "machine": machine,
        "inputs_tried": executed,
        "seconds": round(seconds, 1),
        "seeds": len(corpus),
        "findings": 0,
        "metrics": {
            "decode_hostile_vs_valid_inputs": {
                "ours": round(ours, 1),
                "baseline": round(baseline, 1),
                "unit": "inputs/s",
                "ratio": round(ours / baseline, 3),
                "target": 0.5,
                "higher_is_better": True,
            }
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fuzz_decode.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atheris", action="store_true", help="coverage-guided, with atheris")
    parser.add_argument("--seconds", type=float, default=10.0, help="bounded mode duration")
    parser.add_argument("--seed", type=int, default=23)
    args, rest = parser.parse_known_args()
    if args.atheris:
        return run_atheris(rest)
    return run_bounded(args.seconds, args.seed)


if __name__ == "__main__":
    sys.exit(main())
