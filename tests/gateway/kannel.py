"""A real Kannel for tests: bearerbox + smsbox + the fakesmsc test SMSC on free ports.

Debian's ``kannel`` and ``kannel-extras`` packages provide the binaries (``.ci/run``
installs them). Without them the tests skip, except under ``CI=1`` where they fail: CI
must run them. fakesmsc prints every SMS it receives (``Got message N: <from to text
...>``) and Kannel's fake SMSC then produces real delivery reports (type 8 when the SMS
left for the SMSC, type 1 when "delivered"), which smsbox sends to our ``dlr-url``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FAKESMSC_PATHS = ("/usr/lib/kannel/test/fakesmsc", "/usr/libexec/kannel/test/fakesmsc")


def _binary(name: str, candidates: tuple[str, ...] = ()) -> str | None:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    return found or next((c for c in candidates if os.access(c, os.X_OK)), None)


def kannel_binaries() -> tuple[str, str, str]:
    """Paths of bearerbox, smsbox and fakesmsc; skip (fail under CI) when missing."""
    found = (_binary("bearerbox"), _binary("smsbox"), _binary("fakesmsc", FAKESMSC_PATHS))
    if None in found:
        reason = (
            "Kannel binaries not found (bearerbox, smsbox, fakesmsc): "
            "apt-get install kannel kannel-extras"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found  # type: ignore[return-value]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


CONFIG = """\
group = core
admin-port = {admin}
admin-password = {admin_password}
admin-interface = 127.0.0.1
smsbox-port = {smsbox}
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 0
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{dir}/smsbox.log"
log-level = 0

group = sendsms-user
username = {username}
password = {password}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
text = "no service"
"""


@dataclass
class Kannel:
    directory: Path
    sendsms_url: str
    username: str
    password: str
    admin_url: str
    fakesmsc_out: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def received(self) -> list[str]:
        """Lines fakesmsc printed for SMS it received (``<from> <to> text|data ...``)."""
        lines = self.fakesmsc_out.read_text(errors="replace").splitlines()
        return [line.split(": <", 1)[1].rstrip(">") for line in lines if "Got message" in line]

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_for(check: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"Kannel did not come up: {what}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_kannel(directory: Path) -> Kannel:
    bearerbox, smsbox, fakesmsc = kannel_binaries()
    admin, box, smsc, sendsms = _free_ports(4)
    conf = directory / "kannel.conf"
    conf.write_text(
        CONFIG.format(
            admin=admin, admin_password="adminpw", smsbox=box, smsc=smsc, sendsms=sendsms,
            dir=directory, username="gw", password="gw-secret",
        )
    )  # fmt: skip
    kannel = Kannel(
        directory=directory,
        sendsms_url=f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms",
        username="gw",
        password="gw-secret",
        admin_url=f"http://127.0.0.1:{admin}",
        fakesmsc_out=directory / "fakesmsc.out",
    )

    def spawn(args: list[str], log: str) -> None:
        with (directory / log).open("wb") as out:
            kannel.processes.append(
                subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=directory)
            )

    try:
        spawn([bearerbox, str(conf)], "bearerbox.out")
        _wait_for(lambda: _port_open(admin) and _port_open(smsc), "bearerbox ports")
        spawn([smsbox, str(conf)], "smsbox.out")
        # -m 0: fakesmsc sends no MO traffic of its own, it only prints what it gets.
        spawn(
            [fakesmsc, "-H", "127.0.0.1", "-r", str(smsc), "-i", "0", "-m", "0", "1 2 text x"],
            "fakesmsc.out",
        )
        _wait_for(lambda: _port_open(sendsms), "smsbox sendsms port")

        def smsc_online() -> bool:
            url = f"{kannel.admin_url}/status.txt?password=adminpw"
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                return "(online" in response.read().decode()

        _wait_for(smsc_online, "fake SMSC online")
    except BaseException:
        kannel.stop()
        raise
    return kannel
