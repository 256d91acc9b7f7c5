"""RandomIds: kernel randomness read in blocks (no syscall per id), ids never repeat."""

from __future__ import annotations

import os
import re
import threading

import pytest

from gateway.ops import ids as ids_module
from gateway.ops.ids import RandomIds


def test_ids_are_hex_of_the_asked_size_and_distinct() -> None:
    source = RandomIds(block=64)
    made = [source.hex() for _ in range(1000)] + [source.hex(8) for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in made[:1000])
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in made[1000:])
    assert len(set(made)) == len(made)
    assert len(source.hex(100)) == 200  # bigger than a block: still whole


def test_one_urandom_call_serves_a_block_of_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.urandom

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(ids_module.os, "urandom", counting)
    source = RandomIds(block=4096)
    first = [source.hex() for _ in range(256)]  # 256 x 16 bytes: one block
    assert calls == [4096]
    source.hex()
    assert calls == [4096, 4096]
    assert len(set(first)) == 256


def test_threads_never_get_the_same_bytes() -> None:
    source = RandomIds(block=256)
    seen: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [source.hex() for _ in range(2000)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == len(set(seen)) == 8000
