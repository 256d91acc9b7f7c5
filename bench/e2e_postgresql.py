"""End-to-end rate on the PostgreSQL store over the SQLite rate, measured in the same run.

The workload is ``bench/e2e.py``'s, through its own helpers: one ``serve`` process, an
unlimited route to the bundled mock MMSC, 32 concurrent clients each POSTing a message
with a 50 KB JPEG, the clock stopped when the mock has answered every SubmitReq with
1000. The gateway runs once on SQLite (``data_dir``) and once on a fresh PostgreSQL
database (127.0.0.1:5432, user root; ``MM7GW_BENCH_PG`` overrides the admin URL), created
here and dropped after; the two alternate, ``ROUNDS`` times each, and the rates are
summed, so a noisy neighbour on this shared machine hits both alike.

Writes ``bench/results/e2e_postgresql.json`` (DESIGN.md section 10), metric
``rate_vs_sqlite`` (target 0.7), plus the gateway's CPU per message on each store.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import platform
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402 - after the path setup, like the bench imports below
from psycopg import sql  # noqa: E402

from bench import e2e  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "e2e_postgresql.json"
ADMIN_URL = os.environ.get("MM7GW_BENCH_PG", "postgresql://root@127.0.0.1:5432/postgres")
ROUNDS = int(os.environ.get("BENCH_PG_ROUNDS", "2"))
SIGNING_KEY = "bench-signing-key-0123456789abcdef"


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, uniquely named database; its URL. Dropped on the way out."""
    name = f"mm7gw_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def write_config(
    path: Path, data_dir: Path, mmsc_url: str, ports: dict[str, int], store_url: str | None
) -> None:
    """``bench/e2e.py``'s config; with ``store_url``, on that PostgreSQL database."""
    e2e.write_config(path, data_dir, mmsc_url, ports)
    if store_url is None:
        return
    text = path.read_text().replace("[gateway]\n", f'[gateway]\nsigning_key = "{SIGNING_KEY}"\n', 1)
    text += f'[store]\nurl = "{store_url}"\npool_size = 10\n[cluster]\ninstance_id = "bench"\n'
    path.write_text(text)


async def measure(
    tmpdir: Path, mock_base: str, payload: dict[str, object], store_url: str | None
) -> tuple[float, float]:
    """(messages/s end to end, gateway CPU ms per message) for one gateway run."""
    name = "postgresql" if store_url else "sqlite"
    ports = {k: e2e.free_port() for k in ("api", "mm7", "ops")}
    config = tmpdir / f"{name}.toml"
    write_config(
        config, tmpdir / f"data-{name}-{uuid.uuid4().hex[:6]}", mock_base + "/mm7", ports, store_url
    )
    gateway = e2e.spawn(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)], tmpdir / "log.txt"
    )
    try:
        await e2e.wait_up(f"http://127.0.0.1:{ports['ops']}/healthz")
        api = f"http://127.0.0.1:{ports['api']}"
        await e2e.gateway_rate(api, mock_base, payload, 200)  # warm-up
        cpu = e2e.cpu_seconds(gateway.pid)
        rate, _ = await e2e.gateway_rate(api, mock_base, payload, e2e.MESSAGES)
        cpu = (e2e.cpu_seconds(gateway.pid) - cpu) / e2e.MESSAGES
    finally:
        e2e.stop(gateway)
    print(f"{name}: {rate:.0f} msg/s end to end, gateway CPU {cpu * 1e3:.2f} ms per message")
    return rate, cpu


async def main() -> None:
    payload = {
        "to": "+12025550101",
        "text": "bench",
        "delivery_report": False,
        "media": [
            {"content_type": "image/jpeg", "data": base64.b64encode(e2e.image_50k()).decode()}
        ],
    }
    rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    cpus: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    with tempfile.TemporaryDirectory(prefix="mm7-bench-pg-") as tmp, fresh_database() as store_url:
        tmpdir = Path(tmp)
        mock_port = e2e.free_port()
        mock = e2e.spawn(
            [sys.executable, "-m", "gateway", "mock-mmsc", "--listen", f"127.0.0.1:{mock_port}"],
            tmpdir / "log.txt",
        )
        mock_base = f"http://127.0.0.1:{mock_port}"
        try:
            await e2e.wait_up(mock_base + "/admin/stats")
            for _ in range(ROUNDS):
                for name, url in (("sqlite", None), ("postgresql", store_url)):
                    rate, cpu = await measure(tmpdir, mock_base, payload, url)
                    rates[name].append(rate)
                    cpus[name].append(cpu)
        finally:
            e2e.stop(mock)
    sqlite_rate = sum(rates["sqlite"]) / len(rates["sqlite"])
    pg_rate = sum(rates["postgresql"]) / len(rates["postgresql"])
    sqlite_cpu = sum(cpus["sqlite"]) / len(cpus["sqlite"])
    pg_cpu = sum(cpus["postgresql"]) / len(cpus["postgresql"])
    ratio = pg_rate / sqlite_rate
    print(f"PostgreSQL {pg_rate:.0f} msg/s vs SQLite {sqlite_rate:.0f} msg/s: ratio {ratio:.3f}")
    result = {
        "name": "e2e_postgresql",
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "metrics": {
            "rate_vs_sqlite": {
                "ours": round(pg_rate, 1),
                "baseline": round(sqlite_rate, 1),
                "unit": "msg/s",
                "ratio": round(ratio, 3),
                "target": 0.7,
                "higher_is_better": True,
                "rounds": {k: [round(r, 1) for r in v] for k, v in rates.items()},
            },
            "gateway_cpu_per_message": {
                # Informational: the gateway process's own CPU per message on each store
                # (the PostgreSQL server's share is not in it).
                "ours": round(pg_cpu * 1e3, 3),
                "baseline": round(sqlite_cpu * 1e3, 3),
                "unit": "ms CPU",
                "ratio": round(pg_cpu / sqlite_cpu, 2),
                "target": None,
                "higher_is_better": False,
            },
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
