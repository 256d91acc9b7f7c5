"""End-to-end rate on the PostgreSQL store over the SQLite rate, measured in the same run.

The workload is ``bench/e2e.py``'s, through its own helpers: one ``serve`` process, an
unlimited route to the bundled mock MMSC, 32 concurrent clients each POSTing a message
with a 50 KB JPEG, the clock stopped when the mock has answered every SubmitReq with
1000. The gateway runs once on SQLite (``data_dir``) and once on a fresh PostgreSQL
database (127.0.0.1:5432, user root; ``MM7GW_BENCH_PG`` overrides the admin URL), created
here and dropped after; the two alternate, ``ROUNDS`` times each, and the rates are
summed, so a noisy neighbour on this shared machine hits both alike.

Writes ``bench/results/e2e_postgresql.json`` (DESIGN.md section 10), metric
``rate_vs_sqlite`` (target 0.7), plus where the time goes: the gateway's CPU per message
on each store, and per message on PostgreSQL the server's CPU and the transactions
committed.
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
from statistics import mean

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


def server_cpu_seconds() -> float:
    """CPU time of every ``postgres`` process on this machine (the whole server: other
    clients of it count too, so this is an upper bound of what our database cost)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += e2e.cpu_seconds(int(entry.name))
        except OSError:
            continue  # exited meanwhile
    return total


def commits(store_url: str) -> int:
    """Transactions committed in our database so far (``pg_stat_database``)."""
    with psycopg.connect(store_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


async def measure(
    tmpdir: Path, mock_base: str, payload: dict[str, object], store_url: str | None
) -> tuple[float, float, dict[str, float]]:
    """(messages/s end to end, gateway CPU ms per message, PostgreSQL figures per
    message) for one gateway run."""
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
        cpu, server = e2e.cpu_seconds(gateway.pid), server_cpu_seconds()
        transactions = commits(store_url) if store_url else 0
        rate, _ = await e2e.gateway_rate(api, mock_base, payload, e2e.MESSAGES)
        cpu = (e2e.cpu_seconds(gateway.pid) - cpu) / e2e.MESSAGES
        pg = {"server_ms_cpu": (server_cpu_seconds() - server) / e2e.MESSAGES * 1e3}
        if store_url:
            pg["commits"] = (commits(store_url) - transactions) / e2e.MESSAGES
    finally:
        e2e.stop(gateway)
    print(
        f"{name}: {rate:.0f} msg/s end to end, gateway CPU {cpu * 1e3:.2f} ms per message, "
        + ", ".join(f"postgres {k} {v:.2f} per message" for k, v in pg.items())
    )
    return rate, cpu, pg


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
    server: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
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
                    rate, cpu, pg = await measure(tmpdir, mock_base, payload, url)
                    rates[name].append(rate)
                    cpus[name].append(cpu)
                    server[name].append(pg)
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
            "postgres_server_cpu_per_message": {
                # Informational: CPU of every postgres process per message during the
                # PostgreSQL runs, against the same during the SQLite runs (the server's
                # other clients on this shared machine: the background).
                "ours": round(mean(p["server_ms_cpu"] for p in server["postgresql"]), 3),
                "baseline": round(mean(p["server_ms_cpu"] for p in server["sqlite"]), 3),
                "unit": "ms CPU",
                "ratio": None,
                "target": None,
                "higher_is_better": False,
                "commits_per_message": round(mean(p["commits"] for p in server["postgresql"]), 2),
            },
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
