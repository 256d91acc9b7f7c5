"""``mm7-gateway demo`` (what ``make demo`` runs) as a subprocess: every lifecycle step, exit 0."""

from __future__ import annotations

import subprocess
import sys

STEPS = (
    "gateway started",
    "mock MMSC started",
    "queued id msg_",
    "submitted MM7 MessageID",
    "delivered from the MMSC's delivery report",
    "inbound MMS received",
    "media URL works",
    "mm7gw_messages_accepted_total",
    "stopped cleanly",
)


def test_demo_runs_every_step_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    positions = [out.find(step) for step in STEPS]
    assert all(p >= 0 for p in positions), [
        s for s, p in zip(STEPS, positions, strict=True) if p < 0
    ]
    assert positions == sorted(positions), "steps out of order"
    # Not a TTY here: plain lines, no cursor control.
    assert "\x1b[" not in out
