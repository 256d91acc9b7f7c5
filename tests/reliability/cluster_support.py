"""A fleet on one PostgreSQL database: real ``serve`` processes and the bundled mock MMSC.

``Cluster`` starts the mock MMSC as a subprocess recording every exchange (``--record``)
and any number of gateway instances, each a ``python -m gateway serve`` subprocess with
its own listeners and the same ``[store] url``, signing key and routes. What the fleet
did is read back from the mock's own record (``arrivals``): which instance sent each
SubmitReq (its ``VASID`` is the instance name), with which TransactionID, when it
arrived and when it was answered. ``tests/reliability/test_cluster.py`` and
``bench/cluster_rate.py`` drive it; the checks on what was recorded (token-bucket
conformance, steady rate, peak concurrency) live here so both apply the same ones.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from protocol import SubmitReq, SubmitRsp
from tests.reliability.helpers import (
    AUTH,
    Daemon,
    free_port,
    gateway_toml,
    recorded_exchanges,
    wait_http,
)

#: One key for every instance: a media URL signed by one is checked by another.
SIGNING_KEY = "cluster-signing-key-0123456789abcdef"


@dataclass(frozen=True)
class Arrival:
    """One SubmitReq as the mock recorded it."""

    seq: int
    #: Wall-clock time the mock wrote the request (it does so before answering).
    at: float
    #: Wall-clock time it wrote its answer (None: not answered, e.g. still in its latency).
    answered_at: float | None
    route: str
    instance: str
    transaction_id: str
    status_code: int | None

    @property
    def message_id(self) -> str:
        # TransactionIDs are "<message id>-<batch>" (gateway/outbound/submission.py).
        return self.transaction_id.rsplit("-", 1)[0]


@dataclass
class Instance:
    name: str
    daemon: Daemon
    ports: dict[str, int]
    config: Path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def mm7(self) -> str:
        return f"http://127.0.0.1:{self.ports['mm7']}"

    @property
    def ops(self) -> str:
        return f"http://127.0.0.1:{self.ports['ops']}"


@dataclass
class Cluster:
    """The mock MMSC plus gateway instances sharing ``store_url``; stop() ends them all."""

    root: Path
    store_url: str
    #: ``[[mmsc]]`` tables (name, tps, burst, max_in_flight, ...); url/vasp_id/vas_id are set here.
    routes: list[dict[str, Any]]
    cluster: dict[str, Any] = field(default_factory=dict)
    #: Further config tables of every instance (``webhooks``, ...).
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Extra ``mock-mmsc`` flags.
    mock_args: list[str] = field(default_factory=list)
    #: Instance whose MM7 listener gets the mock's callbacks (any instance serves them).
    callbacks_to: str = "gw-a"
    instances: dict[str, Instance] = field(default_factory=dict)
    mock: Daemon | None = None
    mock_port: int = 0

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.record = self.root / "record"
        self.log = self.root / "daemons.log"
        self.mock_port = free_port()
        # Ports are fixed per instance name: a restarted instance listens where it did.
        self._ports: dict[str, dict[str, int]] = {}

    @property
    def mock_base(self) -> str:
        return f"http://127.0.0.1:{self.mock_port}"

    def ports(self, name: str) -> dict[str, int]:
        if name not in self._ports:
            self._ports[name] = {k: free_port() for k in ("api", "mm7", "ops")}
        return self._ports[name]

    # -- processes -------------------------------------------------------------------------
    async def start_mock(self) -> None:
        # By route name: on bare /mm7 a report that fits several routes is refused.
        mm7 = self.ports(self.callbacks_to)["mm7"]
        callback = f"http://127.0.0.1:{mm7}/mm7/{self.routes[0]['name']}"
        self.mock = Daemon(
            [
                "mock-mmsc", "--listen", f"127.0.0.1:{self.mock_port}",
                "--record", str(self.record), "--vasp-url", callback,
                "--callback-backoff", "0.2", *self.mock_args,
            ],
            self.log,
        )  # fmt: skip
        self.mock.start()
        await wait_http(self.mock_base + "/admin/stats")

    def write_config(self, name: str) -> Path:
        ports = self.ports(name)
        routes = [
            {
                **route,
                "url": self.mock_base + "/mm7",
                # The mock's record says which route and which instance sent a SubmitReq.
                "vasp_id": route["name"],
                "vas_id": name,
            }
            for route in self.routes
        ]
        text = gateway_toml(
            self.root / name,
            routes[0]["url"],
            ports,
            gateway={"signing_key": SIGNING_KEY},
            mmsc=routes[0],
            extra_routes=routes[1:],
            tables={
                "store": {"url": self.store_url, "pool_size": 4},
                "cluster": {"instance_id": name, **self.cluster},
                **self.tables,
            },
            api_key={"role": "admin"},  # the console too
        )
        path = self.root / f"{name}.toml"
        path.write_text(text)
        return path

    async def start(self, name: str) -> Instance:
        """Start (or restart) instance ``name``; returns once its ops listener answers."""
        instance = self.instances.get(name)
        if instance is None:
            config = self.write_config(name)
            daemon = Daemon(["serve", "--config", str(config)], self.log)
            instance = self.instances[name] = Instance(name, daemon, self.ports(name), config)
        instance.daemon.start()
        await wait_http(instance.ops + "/healthz", timeout=60.0)
        return instance

    async def start_all(self, names: list[str]) -> None:
        await asyncio.gather(*(self.start(n) for n in names))

    def migrate(self, name: str) -> subprocess.CompletedProcess[str]:
        """``mm7-gateway migrate`` with instance ``name``'s config, as an operator runs it."""
        return subprocess.run(
            [sys.executable, "-m", "gateway", "migrate", "--config", str(self.write_config(name))],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs (leases, heartbeat rows and all stay behind)."""
        self.instances[name].daemon.kill()

    def stop(self) -> None:
        for instance in self.instances.values():
            instance.daemon.stop()
        if self.mock is not None:
            self.mock.stop()

    # -- REST and metrics --------------------------------------------------------------------
    async def submit(
        self, session: aiohttp.ClientSession, name: str, payload: dict[str, Any]
    ) -> str:
        url = self.instances[name].api + "/v1/messages"
        async with session.post(url, json=payload, headers=AUTH) as response:
            body = await response.json()
            assert response.status == 202, (name, response.status, body)
            return str(body["id"])

    async def status(self, session: aiohttp.ClientSession, name: str, message_id: str) -> str:
        url = f"{self.instances[name].api}/v1/messages/{message_id}"
        async with session.get(url, headers=AUTH) as response:
            body = await response.json()
            assert response.status == 200, (name, message_id, body)
            return str(body["status"])

    async def metric(self, name: str, sample: str) -> float | None:
        """The value of an unlabelled sample on instance ``name``'s ``/metrics``."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.instances[name].ops + "/metrics") as response,
        ):
            text = await response.text()
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[1])
        return None

    async def mock_config(self, **values: object) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.mock_base + "/admin/config", data=json.dumps(values)) as response,
        ):
            assert response.status == 200, await response.text()

    # -- what the mock recorded --------------------------------------------------------------
    def sent(self) -> int:
        """Requests the mock has received so far (cheap: no decoding)."""
        return len(list(self.record.glob("*-in-request.http")))

    def unanswered_from(self, instance: str, within: float) -> list[Path]:
        """Requests of ``instance`` the mock received in the last ``within`` seconds and
        holds right now (no answer written yet)."""
        marker = f">{instance}<".encode()  # its VASID element
        since = time.time() - within
        return [
            path
            for path in self.record.glob("*-in-request.http")
            if path.stat().st_mtime >= since
            and not path.with_name(path.name.replace("-request", "-response")).exists()
            and marker in path.read_bytes()
        ]

    def arrivals(self) -> list[Arrival]:
        """Every SubmitReq the mock received, in arrival order."""
        found = []
        for exchange in recorded_exchanges(self.record):
            request = exchange.request
            if exchange.direction != "in" or not isinstance(request, SubmitReq):
                continue
            ident = request.sender_identification
            assert ident is not None and request.transaction_id is not None
            base = self.record / f"{exchange.seq:06d}-in"
            answer = Path(f"{base}-response.http")
            response = exchange.response
            found.append(
                Arrival(
                    seq=exchange.seq,
                    at=Path(f"{base}-request.http").stat().st_mtime,
                    answered_at=answer.stat().st_mtime if answer.exists() else None,
                    route=ident.vasp_id or "",
                    instance=ident.vas_id or "",
                    transaction_id=request.transaction_id,
                    status_code=response.status_code if isinstance(response, SubmitRsp) else None,
                )
            )
        return found


# -- checks on what was recorded -------------------------------------------------------------


def bucket_excess(times: list[float], rate: float, burst: float) -> float:
    """How far the arrivals break a token bucket of ``rate``/s holding ``burst``: the
    largest ``(j - i + 1) - burst - rate * (t_j - t_i)`` over every window of arrivals
    (<= 0: they conform). Arrivals must be sorted."""
    worst = float("-inf")
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - burst - rate * (times[j] - start))
    return worst


def steady_rate(times: list[float], skip: int) -> float:
    """Arrivals per second after the first ``skip`` (the saved-up burst): counted between
    the first and the last of the rest, so the phase's edges do not matter."""
    rest = times[skip:]
    if len(rest) < 2 or rest[-1] <= rest[0]:
        return 0.0
    return (len(rest) - 1) / (rest[-1] - rest[0])


def rate_between(times: list[float], start: float, end: float) -> float:
    """Arrivals per second in ``[start, end)``."""
    return sum(1 for t in times if start <= t < end) / (end - start)


def peak_concurrency(arrivals: list[Arrival]) -> int:
    """Most SubmitReqs the mock held at once (between writing a request and its answer)."""
    edges = []
    for arrival in arrivals:
        if arrival.answered_at is None:
            continue
        edges += [(arrival.at, 1), (arrival.answered_at, -1)]
    peak = current = 0
    # At equal times an answer goes first: the next request came after it.
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        current += step
        peak = max(peak, current)
    return peak
