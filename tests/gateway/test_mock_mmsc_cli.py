"""``mm7-gateway mock-mmsc``: flags, config files, errors, and the real process."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

import protocol
from gateway.mock_mmsc import MockConfigError, MockSettings, cli
from gateway.mock_mmsc.config import KEYS, apply, load_toml

REPO = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_every_key_is_a_flag() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    flags = {opt for action in parser._actions for opt in action.option_strings}
    assert {"--" + key.replace("_", "-") for key in KEYS} <= flags


def test_flags_become_settings() -> None:
    settings = cli.settings_from_args(
        parse(
            "--listen",
            "[::1]:9191",
            "--vasp-url",
            "http://127.0.0.1:8081/mm7",
            "--username",
            "u",
            "--password",
            "pw-s3cret",
            "--version",
            "REL-5-MM7-1-3",
            "--dr-delay",
            "0.5",
            "--dr-outcomes",
            "Retrieved=0.9,Rejected=0.05,Expired=0.05",
            "--tps",
            "50",
            "--latency",
            "20,5",
            "--fail-rate",
            "3000=0.01,4006=0.02",
            "--http-error-rate",
            "0.1",
            "--drop-rate",
            "0.2",
            "--record",
            "/tmp/rec",
            "--seed",
            "7",
            "--max-message-bytes",
            "300000",
            "--max-recipients",
            "10",
            "--fault-style",
            "rsp",
        )
    )
    assert settings.listen_host == "::1"
    assert settings.listen_port == 9191
    assert settings.vasp_url == "http://127.0.0.1:8081/mm7"
    assert (settings.username, settings.password) == ("u", "pw-s3cret")
    assert settings.version == "REL-5-MM7-1-3"
    assert settings.dr_delay == 0.5
    assert settings.dr_outcomes == (("Retrieved", 0.9), ("Rejected", 0.05), ("Expired", 0.05))
    assert settings.tps == 50
    assert (settings.latency_ms, settings.latency_jitter_ms) == (20, 5)
    assert settings.fail_rate == ((3000, 0.01), (4006, 0.02))
    assert settings.http_error_rate == 0.1
    assert settings.drop_rate == 0.2
    assert settings.record == Path("/tmp/rec")
    assert settings.seed == 7
    assert settings.max_message_bytes == 300000
    assert settings.max_recipients == 10
    assert settings.fault_style == "rsp"
    assert "pw-s3cret" not in repr(settings)


def test_defaults() -> None:
    settings = cli.settings_from_args(parse())
    assert settings == MockSettings()
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 9090)
    assert settings.version is None  # echo


def test_config_file_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "mock.toml"
    config.write_text(
        'listen = "127.0.0.1:9999"\n'
        "dr_delay = 2\n"
        "fail_rate = { 3000 = 0.5 }\n"
        "dr_outcomes = { Retrieved = 1 }\n"
        "latency = 30\n"
        "seed = 1\n"
    )
    settings = cli.settings_from_args(parse("--config", str(config), "--dr-delay", "0.1"))
    assert settings.listen_port == 9999
    assert settings.dr_delay == 0.1  # the flag wins
    assert settings.fail_rate == ((3000, 0.5),)
    assert settings.latency_ms == 30
    assert settings.seed == 1


def test_config_under_a_table(tmp_path: Path) -> None:
    config = tmp_path / "mock.toml"
    config.write_text('[mock_mmsc]\nversion = "REL-6-MM7-1-0"\n')
    assert cli.settings_from_args(parse("--config", str(config))).version == "REL-6-MM7-1-0"


def test_example_config_loads() -> None:
    settings = apply(MockSettings(), load_toml(REPO / "config" / "mock-mmsc.toml"))
    assert settings.listen_port == 9090
    assert settings.dr_outcomes[0] == ("Retrieved", 0.9)
    assert settings.tps is None
    assert settings.max_message_bytes is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("dr_dealy = 1\n", "dr_dealy"),
        ('listen = "nowhere"\n', "listen"),
        ("fail_rate = { abc = 0.1 }\n", "fail_rate"),
        ("fail_rate = { 3000 = 0.7, 4006 = 0.7 }\n", "fail_rate"),
        ('dr_outcomes = "Delivered=1"\n', "dr_outcomes"),
        ("drop_rate = 1.5\n", "drop_rate"),
        ('version = "REL-9-MM7-1-0"\n', "version"),
        ('fault_style = "loud"\n', "fault_style"),
        ("tps = -1\n", "tps"),
        ('username = "u"\n', "password"),
        ("[broken\n", "mock.toml"),
    ],
)
def test_invalid_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str
) -> None:
    config = tmp_path / "mock.toml"
    config.write_text(text)
    with pytest.raises(MockConfigError) as info:
        cli.settings_from_args(parse("--config", str(config)))
    assert key in info.value.key
    assert cli.run(parse("--config", str(config))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert key in err
    assert "Traceback" not in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse("--config", str(tmp_path / "absent.toml"))) == 2
    assert "absent.toml" in capsys.readouterr().err


def test_bad_flag_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse("--latency", "soon")) == 2
    assert capsys.readouterr().err.startswith("mm7-gateway mock-mmsc: config error: latency:")


# -- the real process ---------------------------------------------------------------


def _start(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "mock-mmsc", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_subprocess_serves_submit(unused_tcp_port: int) -> None:
    proc = _start("--listen", f"127.0.0.1:{unused_tcp_port}", "--seed", "1")
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), 20)
        assert b"listening on http://127.0.0.1:" in line, line
        message = protocol.SubmitReq(
            transaction_id="sp-1",
            recipients=protocol.Recipients(to=(protocol.Address.number("+15550001"),)),
        )
        content_type, body = protocol.encode(message)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{unused_tcp_port}/mm7",
                data=body,
                headers={"Content-Type": content_type},
            ) as response,
        ):
            raw = await response.read()
            rsp = protocol.decode(raw, response.headers["Content-Type"])
        assert isinstance(rsp, protocol.SubmitRsp)
        assert rsp.status_code == 1000
        assert rsp.transaction_id == "sp-1"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def test_subprocess_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("tsp = 5\n")
    proc = _start("--config", str(config))
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert "tsp" in lines[0]
