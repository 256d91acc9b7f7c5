"""The durability settings the guarantees rest on are really in force: the gateway's own
SQLite connection runs WAL with ``synchronous=FULL``, and media files and their directory
are fsynced before a message row can name them. Dropping either fails here."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import aiohttp
import pytest

from gateway.media import store as media_store_module
from gateway.media.store import MediaStore
from tests.gateway.callback_helpers import build_config, running, send_message

#: ``PRAGMA synchronous`` answers with a number: 2 is FULL.
FULL = 2


async def test_the_gateway_store_commits_with_synchronous_full(tmp_path):
    async with running(build_config(tmp_path, "http://127.0.0.1:9/mm7")) as gw:
        # Asked on the store's own connection: the pragma is per connection. (SQLite's
        # build default is FULL too; what this catches is a NORMAL or OFF set anywhere.)
        synchronous = await gw.store.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        journal = await gw.store.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
    assert synchronous == FULL
    assert journal == "wal"


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(``file``/``dir``, path) of everything fsynced, in order."""
    kinds: list[tuple[str, str]] = []
    real = os.fsync

    def recording(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        kinds.append((kind, str(Path(f"/proc/self/fd/{fd}").readlink())))
        real(fd)

    monkeypatch.setattr(media_store_module.os, "fsync", recording)
    return kinds


async def test_media_file_and_directory_are_fsynced_before_put_returns(tmp_path, fsyncs):
    store = MediaStore(tmp_path / "media")
    digest = await store.put(b"some image bytes")
    path = store.path_for(digest)
    # The temporary file is synced before its rename, then the directory holding the name.
    [(file_kind, tmp), (dir_kind, directory)] = fsyncs
    assert (file_kind, dir_kind) == ("file", "dir")
    assert tmp.startswith(str(path.parent / f".{digest}."))
    assert directory == str(path.parent)
    assert path.read_bytes() == b"some image bytes"
    # Known content is not written (nor synced) again.
    await store.put(b"some image bytes")
    assert len(fsyncs) == 2


async def test_media_of_a_submitted_message_is_fsynced(tmp_path, fsyncs):
    # Through the real gateway: the part is on disk, synced, before the 202.
    audio = b"#!AMR\n" + bytes(2000)
    async with (
        running(build_config(tmp_path, "http://127.0.0.1:9/mm7")) as gw,
        aiohttp.ClientSession() as s,
    ):
        fsyncs.clear()  # whatever start-up synced (the signing key)
        media = [{"data": base64.b64encode(audio).decode()}]
        status, body = await send_message(s, gw, "+821012345678", media=media)
        assert status == 202, body
    digest = hashlib.sha256(audio).hexdigest()
    media_dir = str(tmp_path / "media" / digest[:2])
    assert ("dir", media_dir) in fsyncs
    assert any(k == "file" and p.startswith(f"{media_dir}/.{digest}.") for k, p in fsyncs)
