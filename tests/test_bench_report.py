"""bench/report.py renders the README benchmark table from result JSON (DESIGN.md §10)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "report.py"


def load_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = load_report()

E2E = {
    "name": "e2e",
    "machine": "vm x86_64 2 cpu",
    "metrics": {
        "submit_rate": {
            "label": "REST accept → SubmitRsp, text",
            "ours": 1234.56,
            "baseline": 5000.0,
            "unit": "msg/s",
            "ratio": 0.247,
            "target": 0.25,
            "higher_is_better": True,
        },
        "p99_added_latency_at_half_rate": {
            "ours": 12.5,
            "baseline": 1.1,
            "unit": "ms",
            "ratio": 11.36,
            "target": 20.0,
            "target_applies_to": "ours",
            "higher_is_better": False,
        },
        "peak_rss": {"ours": 70.2, "baseline": None, "unit": "MiB", "ratio": None, "target": None},
    },
}
CODEC = {
    "name": "codec",
    "machine": "vm x86_64 2 cpu",
    "metrics": {
        "encode": {"ours": 9000, "baseline": 15000, "unit": "ops/s", "ratio": 0.6, "target": 0.5},
        "cpu": {
            "ours": 3.0,
            "baseline": 1.0,
            "unit": "ms | CPU",
            "ratio": 3.0,
            "target": 2.0,
            "higher_is_better": False,
        },
    },
}
README = "# Title\n\nintro\n\n{start}\nold table typed by hand\n{end}\n\nafter\n"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "e2e.json").write_text(json.dumps(E2E))
    (folder / "codec.json").write_text(json.dumps(CODEC))
    return folder


def test_rows_come_from_the_results(results: Path) -> None:
    lines = report.rows(report.load(results))
    assert lines[0].startswith("| benchmark | metric | ours |")
    body = lines[2:]
    # Sorted by benchmark name, metrics in their file order.
    assert [line.split(" | ")[0] for line in body] == ["| codec"] * 2 + ["| e2e"] * 3
    assert body[0] == "| codec | encode | 9,000 | 15,000 | ops/s | 0.6 | ratio ≥ 0.5 | met |"
    # Lower is better, ratio over target: missed; a | in a value cannot split the cell.
    assert body[1] == "| codec | cpu | 3 | 1 | ms \\| CPU | 3 | ratio ≤ 2 | missed |"
    assert body[2] == (
        "| e2e | REST accept → SubmitRsp, text | 1,234.6 | 5,000 | msg/s | 0.247 "
        "| ratio ≥ 0.25 | missed |"
    )
    # An absolute target is checked against ours, not the ratio.
    assert body[3] == (
        "| e2e | p99_added_latency_at_half_rate | 12.5 | 1.1 | ms | 11.4 | ours ≤ 20 ms | met |"
    )
    assert body[4] == "| e2e | peak_rss | 70.2 | — | MiB | — |  | — |"


def test_the_readme_table_is_replaced_between_the_markers(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README.format(start=report.START, end=report.END))
    args = ["--results", str(results), "--readme", str(readme)]
    assert report.main([*args, "--check"]) == 1  # stale before
    assert report.main(args) == 0
    text = readme.read_text()
    assert "old table typed by hand" not in text
    assert text.startswith("# Title\n\nintro\n\n" + report.START)
    assert text.endswith(report.END + "\n\nafter\n")
    assert "| e2e | REST accept → SubmitRsp, text | 1,234.6 |" in text
    assert "Measured on: vm x86_64 2 cpu." in text
    assert report.main([*args, "--check"]) == 0  # fresh after
    assert report.main(args) == 0
    assert readme.read_text() == text  # idempotent


def test_missing_markers_or_bad_json_are_errors(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert report.main(["--results", str(results), "--readme", str(readme)]) == 2
    readme.write_text(README.format(start=report.START, end=""))
    assert report.main(["--results", str(results), "--readme", str(readme)]) == 2
    readme.write_text(README.format(start=report.START, end=report.END))
    (results / "broken.json").write_text("{not json")
    assert report.main(["--results", str(results), "--readme", str(readme)]) == 2
    assert "old table typed by hand" in readme.read_text()


def test_the_project_readme_has_the_markers() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(report.START) == 1
    assert text.count(report.END) == 1
    assert text.index(report.START) < text.index(report.END)


def test_it_runs_as_a_script(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README.format(start=report.START, end=report.END))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--results", str(results), "--readme", str(readme)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2 result files" in done.stdout
