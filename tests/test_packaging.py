"""The wheel ships protocol/ and gateway/ with their type markers, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("mm7_gateway-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "protocol/py.typed" in names
    assert "gateway/py.typed" in names
    assert "gateway/assets/openapi.json" in names  # served at GET /v1/openapi.json
    assert "protocol/codec.py" in names and "gateway/app.py" in names
    assert "gateway/mock_mmsc/app.py" in names
    # The console renders from package data: templates and local assets ship in the wheel.
    assert "gateway/console/templates/timeline.html" in names
    assert "gateway/console/static/console.css" in names
    assert not [n for n in names if n.startswith(("tests/", "fixtures/", "bench/"))]


def test_version_matches_metadata() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"mm7-gateway {version('mm7-gateway')}"
