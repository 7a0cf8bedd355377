"""deploy/ checked without a Docker daemon: the compose file parses, and everything it (and the
systemd environment) hands the API and the worker is a real setting that validates; PgBouncer's
file is in transaction mode; the alert rules and the Grafana dashboard name only metrics a real
server's /metrics exports (scraped here)."""

from __future__ import annotations

import configparser
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import ServerProcess

from pocketbizz.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# A metric name in PromQL: ours, or Prometheus' own `up`.
METRIC = re.compile(r"\b(pocketbizz_[a-z0-9_]+|up)\b")
# ${NAME}, ${NAME:-default}, ${NAME:?message}: compose's interpolation.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None)
        names.update([str(c) for c in choices] if choices else [f"PB_{name.upper()}"])
    return names


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def interpolated(value: str) -> str:
    """A value as compose would give it with every required variable set to a long secret."""

    def one(match: re.Match[str]) -> str:
        default = match.group(2)
        required = match.group(0).startswith(f"${{{match.group(1)}:?")
        return "s3cr3t-" + "x" * 40 if required or default is None else default

    return INTERPOLATION.sub(one, value)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith(("PB_", "DATABASE_", "REDIS_", "SENTRY_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.mark.parametrize("service", ["api", "worker"])
def test_the_api_and_worker_get_only_real_settings(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = compose()["services"][service]
    env = {name: interpolated(str(value)) for name, value in spec["environment"].items()}
    assert set(env) <= setting_names(), set(env) - setting_names()
    settings = settings_from(env, monkeypatch)
    # Through PgBouncer: the pools at DATABASE_URL, sessions direct, no statement cache.
    assert settings.environment == "production"
    assert settings.database_url is not None and "@pgbouncer:6432/" in settings.database_url
    assert settings.direct_database_url is not None
    assert "@postgres:5432/" in settings.direct_database_url
    assert settings.statement_cache_size == 0
    assert settings.redis_url == "redis://redis:6379/0"
    proxy = compose()["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    assert f"{proxy}/32" in settings.trusted_proxies.split(",")
    command = " ".join(spec["command"])
    assert ("serve --no-worker" in command) if service == "api" else command.endswith("worker")


def test_the_compose_file_has_every_part() -> None:
    services = compose()["services"]
    assert set(services) == {
        "postgres", "pgbouncer", "redis", "api", "worker", "proxy", "prometheus", "grafana"
    }  # fmt: skip
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["api"]["deploy"]["replicas"]
    assert services["pgbouncer"]["environment"].keys() == {"PB_AUTHENTICATOR_PASSWORD"}
    # Every file a service mounts from deploy/ exists.
    for spec in services.values():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
    assert services["worker"]["image"] == services["api"]["image"]
    assert services["worker"]["healthcheck"] == {"disable": True}
    for name in ("api", "worker", "pgbouncer"):
        build = services[name]["build"]
        context = DEPLOY / (build if isinstance(build, str) else build["context"])
        dockerfile = (
            build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        )
        assert (context / dockerfile).is_file()


def test_pgbouncer_pools_transactions_for_the_api_database() -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(DEPLOY / "pgbouncer" / "pgbouncer.ini")
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert ini["pgbouncer"]["listen_port"] == "6432"
    api_env = compose()["services"]["api"]["environment"]
    database = api_env["DATABASE_URL"].rsplit("/", 1)[1]
    assert f"dbname={database}" in ini["databases"][database]
    assert "host=postgres" in ini["databases"][database]


def test_the_systemd_units_run_the_cli_with_real_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for unit, command in (
        ("pocketbizz.service", "pocketbizz serve"),
        ("pocketbizz-worker.service", "pocketbizz worker"),
    ):
        parsed = configparser.ConfigParser(interpolation=None, strict=False)
        parsed.read(DEPLOY / "systemd" / unit)
        assert command in parsed["Service"]["ExecStart"]
        assert parsed["Service"]["EnvironmentFile"] == "/etc/pocketbizz/pocketbizz.env"
        assert parsed["Service"]["User"] == "pocketbizz"
    env = {}
    for line in (DEPLOY / "systemd" / "pocketbizz.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    assert set(env) <= setting_names(), set(env) - setting_names()
    assert settings_from(env, monkeypatch).statement_cache_size == 0


@pytest.fixture(scope="module")
def exported(server: ServerProcess) -> set[str]:
    """The series names a real server's /metrics exports, after a few requests."""
    for path in ("/rest/v1/products", "/auth/v1/settings", "/health"):
        httpx.get(server.url + path, headers={"apikey": server.anon_key})
    text = httpx.get(server.url + "/metrics").text
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\w+)$", text, flags=re.MULTILINE):
        suffixes = ("_bucket", "_count", "_sum") if kind == "histogram" else ("",)
        names.update(name + suffix for suffix in suffixes)
    return names | {"up"}  # Prometheus' own, per scraped target


def test_alert_rules_watch_errors_latency_and_the_pool(exported: set[str]) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    [group] = rules["groups"]
    alerts = {rule["alert"]: rule for rule in group["rules"]}
    for rule in alerts.values():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        used = set(METRIC.findall(rule["expr"]))
        assert used and used <= exported, used - exported
        assert rule["expr"].count("(") == rule["expr"].count(")")
    assert 'status=~"5.."' in alerts["PocketBizzHighErrorRate"]["expr"]
    assert "histogram_quantile(0.95" in alerts["PocketBizzSlowRequests"]["expr"]
    assert 'state="waiting"' in alerts["PocketBizzPoolSaturated"]["expr"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    [job] = config["scrape_configs"]
    token = compose()["services"]["prometheus"]["configs"][0]["target"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["credentials_file"] == token


def test_the_dashboard_queries_real_metrics(exported: set[str]) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "pocketbizz.json").read_text())
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        used = set(METRIC.findall(expr))
        assert used and used <= exported, (expr, used - exported)
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
    assert {
        "pocketbizz_db_pool_connections",
        "pocketbizz_http_request_duration_seconds_bucket",
    } <= {name for expr in exprs for name in METRIC.findall(expr)}
