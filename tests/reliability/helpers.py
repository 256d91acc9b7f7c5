"""Shared helpers of the reliability suites: daemons, configs, recordings, memory, certificates.

Everything here runs on loopback only and writes only below the test's ``tmp_path``:

* ``gateway_toml`` writes a gateway config for a ``serve`` subprocess (ports chosen by the
  test, so a restarted process listens where clients expect it);
* ``Daemon`` starts/kills/restarts a ``python -m gateway`` subprocess and reads its RSS;
* ``recorded_exchanges`` decodes what a ``mock-mmsc --record DIR`` wrote;
* ``start_mock`` runs the mock MMSC in this process (optionally over TLS), with a
  middleware that counts every ``POST /mm7`` it receives, whatever the scenario answers;
* ``make_pki`` builds a throw-away CA, server and client certificates with the openssl CLI.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from protocol import Message, ProtocolError, decode
from protocol.capture import split_http_message

API_KEY = "reliability-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- configuration ---------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _table(name: str, values: dict[str, Any], *, array: bool = False) -> str:
    head = f"[[{name}]]" if array else f"[{name}]"
    return "\n".join([head, *(f"{k} = {_toml_value(v)}" for k, v in values.items()), ""])


def gateway_toml(
    data_dir: Path,
    mmsc_url: str,
    ports: dict[str, int],
    *,
    gateway: dict[str, Any] | None = None,
    mmsc: dict[str, Any] | None = None,
    retry: dict[str, Any] | None = None,
    listen: dict[str, Any] | None = None,
    extra_routes: list[dict[str, Any]] | None = None,
    tables: dict[str, dict[str, Any]] | None = None,
    api_key: dict[str, Any] | None = None,
) -> str:
    """A gateway config: one route ``mock`` (plus ``extra_routes``, complete tables), the
    given listener ports, warnings-only logs, and any further ``tables`` (``store``, ...)."""
    route: dict[str, Any] = {
        "name": "mock",
        "url": mmsc_url,
        "vasp_id": "vasp1",
        "vas_id": "svc1",
        "sender": "12345",
        "tps": 0.0,
        "max_in_flight": 8,
    }
    route.update(mmsc or {})
    return "\n".join(
        [
            _table("gateway", {"data_dir": str(data_dir), **(gateway or {})}),
            _table(
                "listen",
                {**{k: f"127.0.0.1:{ports[k]}" for k in ("api", "mm7", "ops")}, **(listen or {})},
            ),
            _table("logging", {"level": "warning", "format": "json"}),
            _table("api_keys", {"name": "rel", "key": API_KEY, **(api_key or {})}, array=True),
            _table("mmsc", route, array=True),
            _table(
                "mmsc.retry",
                {
                    "initial_backoff_seconds": 0.05,
                    "max_backoff_seconds": 0.5,
                    "jitter": 0.0,
                    **(retry or {}),
                },
            ),
            *(_table("mmsc", extra, array=True) for extra in extra_routes or []),
            *(_table(name, values) for name, values in (tables or {}).items()),
        ]
    )


# -- subprocess daemons ------------------------------------------------------------------------


@dataclass
class Daemon:
    """A ``python -m gateway ARGS`` subprocess whose output goes to ``log``."""

    args: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as handle:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", *self.args],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def rss_kib(self) -> int:
        """Resident set size of the process, from ``/proc/<pid>/status`` (``VmRSS``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")


async def wait_http(
    url: str, timeout: float = 20.0, *, ok: Callable[[int], bool] | None = None
) -> None:
    """Poll ``url`` until it answers (any status below 500, or ``ok(status)``)."""
    accept = ok or (lambda status: status < 500)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if accept(r.status):
                        return
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not come up")
            await asyncio.sleep(0.05)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.1
) -> float:
    """Await ``check()`` until true; return the seconds it took, or fail naming ``what``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


# -- what the mock recorded ----------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One recorded exchange: ``in`` = VASP → mock (/mm7), ``out`` = mock → VASP (callback)."""

    seq: int
    direction: str
    request: Message | None
    response: Message | None
    http_status: int | None


def _decode_capture(raw: bytes) -> tuple[Message | None, int | None]:
    try:
        start, headers, body = split_http_message(raw)
    except ProtocolError:
        return None, None
    status = None
    if start is not None and start.startswith("HTTP/"):
        status = int(start.split()[1])
    try:
        return decode(body, headers.get("content-type")), status
    except ProtocolError:
        return None, status


def recorded_exchanges(record_dir: Path) -> list[Exchange]:
    """Every exchange in a ``--record`` directory, in order (half-written files tolerated)."""
    pairs: dict[tuple[int, str], dict[str, Path]] = {}
    for path in record_dir.glob("*.http"):
        number, direction, kind = path.stem.split("-")
        pairs.setdefault((int(number), direction), {})[kind] = path
    exchanges = []
    for (seq, direction), files in sorted(pairs.items()):
        request = _decode_capture(files["request"].read_bytes())[0] if "request" in files else None
        response, status = (
            _decode_capture(files["response"].read_bytes()) if "response" in files else (None, None)
        )
        exchanges.append(Exchange(seq, direction, request, response, status))
    return exchanges


# -- in-process mock MMSC ----------------------------------------------------------------------


@dataclass
class InProcessMock:
    """A mock MMSC app served from this event loop; ``posts`` counts every ``POST /mm7``."""

    port: int
    settings: Any
    ssl_context: ssl.SSLContext | None = None
    runner: web.AppRunner | None = None
    app: web.Application | None = None
    posts: list[float] = field(default_factory=list)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/mm7"

    async def start(self) -> None:
        from gateway.mock_mmsc.app import create_app

        posts = self.posts

        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.method == "POST" and request.path == "/mm7":  # not probes
                posts.append(time.monotonic())
            response: web.StreamResponse = await handler(request)
            return response

        self.app = create_app(replace(self.settings, listen_port=self.port))
        self.app.middlewares.append(count)
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, "127.0.0.1", self.port, ssl_context=self.ssl_context, reuse_address=True
        )
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def state(self) -> Any:
        from gateway.mock_mmsc.state import STATE

        assert self.app is not None
        return self.app[STATE]

    def reconfigure(self, **values: object) -> None:
        """What ``POST /admin/config`` does, without the HTTP round trip."""
        self.state().reconfigure(values)

    def posts_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.posts if start <= t < end)


async def start_mock(
    *, port: int | None = None, ssl_context: ssl.SSLContext | None = None, **settings: Any
) -> InProcessMock:
    from gateway.mock_mmsc.config import MockSettings

    mock = InProcessMock(
        port=port or free_port(),
        settings=replace(MockSettings(), **{"dr_delay": 0.05, **settings}),
        ssl_context=ssl_context,
    )
    await mock.start()
    return mock


# -- a throw-away PKI ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _issue(directory: Path, ca: str, name: str, subject: str, extensions: str) -> None:
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
        cwd=directory,
    )  # fmt: skip
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-sha256", "-out", f"{name}.pem",
        "-extfile", f"{name}.ext",
        cwd=directory,
    )  # fmt: skip


def make_ca(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-sha256",
        "-subj", f"/CN={name} test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=directory,
    )  # fmt: skip
    return directory / f"{name}.pem"


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all from it."""
    make_ca(directory, "ca")
    common = (
        "basicConstraints=CA:FALSE\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
    )
    _issue(
        directory,
        "ca",
        "server",
        "/CN=127.0.0.1",
        common + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    _issue(directory, "ca", "client", "/CN=vasp1", common + "extendedKeyUsage=clientAuth\n")
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )


def server_context(pki: Pki, *, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        context.load_verify_locations(pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
