"""Shared test helpers: paths to our fixtures and to the shared vendor material."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# --import-mode=importlib puts nothing on sys.path; test modules share code through the
# ``tests`` namespace package (``from tests.protocol.strategies import ...``), which needs
# the repository root importable however pytest was started.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
FIXTURES = REPO_ROOT / "fixtures"
#: ``../shared/mm7`` beside the repository: official schemas and vendor samples. Used in
#: place, never copied into the repo.
SHARED_MM7 = Path(__file__).resolve().parents[2] / "shared" / "mm7"


def shared_mm7_path() -> Path:
    """The shared MM7 folder, or skip the calling test when it is absent."""
    if not SHARED_MM7.is_dir():
        pytest.skip(f"shared MM7 material not found at {SHARED_MM7}")
    return SHARED_MM7


@pytest.fixture
def shared_mm7() -> Path:
    return shared_mm7_path()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def fixture_bytes(relative: str) -> bytes:
    """Bytes of a file under ``fixtures/``."""
    return (FIXTURES / relative).read_bytes()


@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL database for this test session (dropped at its end); skips, or fails
    under CI=1, when PostgreSQL is not reachable (``tests/gateway/pg_support.py``)."""
    from tests.gateway import pg_support

    yield from pg_support.session_database()
