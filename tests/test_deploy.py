"""The deployment files in deploy/ (docs/operations.md#deployment) as far as this machine can
check them without Docker or Kubernetes: every YAML parses; the compose file brings up the whole
stack from files that exist, each container's command is accepted by its program's own parser
and reads only settings QTIS knows; nothing secret is written in the files and every published
port is on loopback; Dagster loads the instance configuration against a real Postgres; the
trading container's metrics reach Prometheus on another host."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import psutil
import psycopg
import pyarrow as pa
import pytest
import sqlalchemy
import yaml
from dagster import DagsterInstance, DagsterRun, QueuedRunCoordinator
from dbt.cli.main import dbtRunner
from typer.testing import CliRunner

from cli.app import app
from core.errors import ConfigError
from core.settings import check_environment
from tests.support.cli import start_qtis, stop_group
from tests.support.db import fresh_database, password_server
from tests.support.deploy import (
    container_command,
    dockerfile_stages,
    env_file,
    load_compose,
    parse,
    variables,
)
from tests.support.service import free_port, wait_ready
from training.settings import TrackingServerSettings
from training.tracking_server import check_exposure
from transforms.dbt_runner import PROJECT_DIR, dbt_env
from warehouse import embedded
from warehouse.db import sqlalchemy_url
from warehouse.reads import read_query

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
HELM = DEPLOY / "helm" / "dagster-values.yaml"
EXAMPLE = DEPLOY / "env.example"
# where the images keep the repository (deploy/docker/Dockerfile: WORKDIR)
IMAGE_ROOT = "/opt/qtis"
DAGSTER_HOME = "/opt/dagster/dagster_home"  # and the instance (ENV DAGSTER_HOME)
SERVICES = {"timescaledb", "migrate", "dagster-code", "dagster-webserver", "dagster-daemon",
            "mlflow", "serving", "trading", "trading-live", "prometheus", "grafana"}  # fmt: skip
PASSWORD = "Tr0ub4dor&3 p@ss/w:rd"  # needs escaping in a URL; not in PGPASSWORD
ONE = pa.schema([("one", pa.int64())])


def example_env() -> dict[str, str]:
    """deploy/env.example with a stand-in for each (empty) value, as an operator fills it."""
    return {name: value or f"stand-in-{name.lower()}" for name, value in env_file(EXAMPLE).items()}


def compose() -> dict:
    return load_compose(COMPOSE, example_env())


def built(services: dict) -> dict:
    """The services that run one of the project's images (the others run upstream images)."""
    return {name: s for name, s in services.items() if "build" in s}


def test_the_deployment_files_exist_and_every_yaml_parses():
    expected = {
        COMPOSE,
        HELM,
        DEPLOY / "dagster" / "dagster.yaml",
        DEPLOY / "dagster" / "workspace.yaml",
        DEPLOY / "compose" / "prometheus.yml",
    }
    found = {*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")}
    assert expected <= found, expected - found
    for path in sorted(found):
        assert yaml.safe_load(path.read_text()), f"{path} is empty"


def test_compose_brings_up_the_stack_from_files_that_exist():
    services = compose()["services"]
    assert set(services) == SERVICES
    stages = dockerfile_stages(DOCKERFILE)
    assert {"qtis", "serving", "trading"} <= set(stages)
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name
            assert build["target"] in stages, name
        else:  # an upstream image, pinned to a release
            assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", service["image"]), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
    copied = [
        arg.split()[:-1] for s in stages.values() for kw, arg in s.instructions if kw == "COPY"
    ]
    missing = [src for srcs in copied for src in srcs if not src.startswith("--")
               and not (ROOT / src).exists()]  # fmt: skip
    assert not missing, f"the Dockerfile copies what the repository lacks: {missing}"


def _commands() -> list[tuple[str, list[str]]]:
    """Each project container's command and the CMD form of its health check."""
    stages = dockerfile_stages(DOCKERFILE)
    found = []
    for name, service in built(compose()["services"]).items():
        argv = container_command(service, stages)
        found.append((name, [a.replace(IMAGE_ROOT, str(ROOT)) for a in argv]))
        check = service.get("healthcheck", {}).get("test", [])
        if check[:1] == ["CMD"] and check[1] != "python":
            found.append((f"{name} health check", check[1:]))
    return found


@pytest.mark.parametrize(("service", "argv"), _commands(), ids=[c[0] for c in _commands()])
def test_each_container_command_is_accepted_by_its_program(service, argv):
    """Parsed by the program's own parser as running it would parse it: the subcommands exist,
    every option is known and every value has the right type."""
    in_image = [arg for arg in argv if arg.startswith(str(ROOT))]
    assert all(Path(arg).exists() for arg in in_image), f"{service}: {in_image}"
    try:
        parse(argv)
    except Exception as exc:  # the parser's usage errors (click's and Typer's own copy)
        assert getattr(exc, "exit_code", None) != 2, f"{service}: {argv}: {exc}"
        raise


def test_containers_read_only_settings_that_qtis_knows(tmp_path):
    """QTIS refuses to start on a QTIS_ variable that no setting reads (a typo would otherwise
    leave its default in force): none of the containers may carry one."""
    for name, service in built(compose()["services"]).items():
        try:
            check_environment(environ=service.get("environment", {}), env_file=tmp_path / "none")
        except ConfigError as exc:
            pytest.fail(f"{name}: {exc}")
    helm = yaml.safe_load(HELM.read_text())
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    check_environment(environ={e["name"]: e["value"] for e in deployment["env"]},
                      env_file=tmp_path / "none")  # fmt: skip


def test_no_secret_is_written_in_the_deployment_files():
    """Passwords and tokens come from deploy/.env and deploy/secrets/ (both ignored by git),
    never from the committed files."""
    raw = yaml.safe_load(COMPOSE.read_text())
    secret = re.compile(r"PASSWORD|TOKEN|SECRET")
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key) and not key.endswith("_FILE"):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}: {key}"
        database = (service.get("environment") or {}).get("QTIS_DATABASE_URL")
        assert database is None or urlsplit(database).password is None, name
    assert variables(COMPOSE.read_text()) <= set(env_file(EXAMPLE)), "document them in env.example"
    assert not any(env_file(EXAMPLE).values()), "env.example holds names, not values"
    for secret_file in raw["secrets"].values():
        path = (DEPLOY / secret_file["file"]).relative_to(ROOT)
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", str(path)], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} is not ignored by git"
    helm = yaml.safe_load(HELM.read_text())
    assert "postgresqlPassword" not in helm["postgresql"]
    assert helm["generatePostgresqlPasswordSecret"] is False  # the secret is made by hand


def test_published_ports_are_on_loopback_and_the_api_needs_tokens():
    services = compose()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to every host"
    serving = services["serving"]["environment"]
    assert serving["QTIS_SERVE_HOST"] == "0.0.0.0"  # inside its container: tokens are required
    assert serving["QTIS_API_TOKEN_FILE"].startswith("/run/secrets/")
    assert "QTIS_API_OPEN" not in serving


def test_the_tracking_server_runs_as_its_container_runs_it(db_url, tmp_path, monkeypatch):
    """The mlflow container's command and environment: QTIS lets it bind every interface of its
    container (it says --open), and, bound to loopback here, it serves its health check and
    answers the names the other containers reach it by, and no other."""
    service = compose()["services"]["mlflow"]
    argv = container_command(service, dockerfile_stages(DOCKERFILE))
    assert argv[:3] == ["qtis", "mlflow", "server"]
    environment = service["environment"] | {"QTIS_DATABASE_URL": db_url,
                                            "QTIS_HOME": str(tmp_path / "home")}  # fmt: skip
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    host = argv[argv.index("--host") + 1]
    check_exposure(TrackingServerSettings(server_host=host, server_open="--open" in argv))
    port = free_port()
    args = [{host: "127.0.0.1", "5000": str(port)}.get(a, a) for a in argv[1:]]
    log = tmp_path / "mlflow.log"
    process = start_qtis(args, environment, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base, log, "/health")
        for name, allowed in (("mlflow:5000", True), ("mlflow", True), ("evil.example", False)):
            answer = httpx.get(f"{base}/api/2.0/mlflow/experiments/get-by-name",
                               params={"experiment_name": "Default"}, headers={"Host": name},
                               timeout=10)  # fmt: skip
            assert (answer.status_code == 200) is allowed, (name, answer.status_code)
    finally:
        stop_group(process)


def test_the_serving_image_is_the_bento_with_hashed_requirements():
    stages = dockerfile_stages(DOCKERFILE)
    serving = stages["serving"]
    runs = " ".join(arg for kw, arg in serving.instructions if kw == "RUN")
    assert "--require-hashes -r deploy/requirements-serving.txt" in runs
    bento = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    packages = {pattern.split("/")[0] for pattern in bento["include"]}
    copied = {arg.split()[0] for kw, arg in serving.instructions if kw == "COPY"}
    assert copied - {"deploy/requirements-serving.txt"} == packages
    assert serving.last("USER") == stages["qtis"].last("USER") == "qtis"
    assert stages["trading"].base == "qtis"  # and so its user too


def test_prometheus_and_grafana_watch_the_services():
    services = compose()["services"]
    local = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    scrape = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]
    }
    assert set(jobs) == {job["job_name"] for job in local["scrape_configs"]}
    trading = " ".join(services["trading"]["command"])
    metrics_port = re.search(r"--metrics-port (\d+)", trading)[1]
    assert jobs["qtis-trading"] == [f"trading:{metrics_port}"]
    assert jobs["qtis-serving"] == [
        f"serving:{services['serving']['environment']['QTIS_SERVE_PORT']}"
    ]
    assert "--metrics-host 0.0.0.0" in trading
    grafana = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("."))
    assert grafana["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provisioning = DEPLOY / "grafana" / "provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "qtis.yaml").read_text())[
        "providers"
    ]
    inside = provider["options"]["path"]
    dashboards = {Path(src).name for src, dst in grafana.items() if dst.startswith(inside)}
    assert dashboards == {p.name for p in (DEPLOY / "grafana").glob("*.json")}
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["isDefault"]


def test_dagster_runs_the_project_code_location_everywhere():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    services = compose()["services"]
    code = services["dagster-code"]["command"]
    assert code[code.index("-m") + 1] == pyproject["module_name"]
    (location,) = yaml.safe_load((DEPLOY / "dagster" / "workspace.yaml").read_text())["load_from"]
    server = location["grpc_server"]
    assert (server["host"], str(server["port"])) == ("dagster-code", code[code.index("--port") + 1])
    assert server["location_name"] == pyproject["code_location_name"]
    helm = yaml.safe_load(HELM.read_text())
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    args = deployment["codeServerArgs"]
    assert args[args.index("--module-name") + 1] == pyproject["module_name"]
    assert deployment["name"] == pyproject["code_location_name"]
    image_env = [
        arg for kw, arg in dockerfile_stages(DOCKERFILE)["qtis"].instructions if kw == "ENV"
    ]
    assert f"DAGSTER_HOME={DAGSTER_HOME}" in image_env
    assert helm["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("dagster-postgres==") for d in dependencies)  # the image has it
    coordinator = helm["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"


def test_dagster_loads_the_instance_configuration(pg_server, tmp_path, monkeypatch):
    """deploy/dagster/dagster.yaml with the Dagster containers' environment, pointed at a real
    Postgres, loads as the webserver and daemon load it: validated, connected, tables made."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster" / "dagster.yaml", home / "dagster.yaml")
    url = fresh_database(pg_server)
    server = psycopg.conninfo.conninfo_to_dict(url)
    env = compose()["services"]["dagster-daemon"]["environment"]
    assert (env["DAGSTER_HOME"], env["DAGSTER_PG_HOST"]) == (DAGSTER_HOME, "timescaledb")
    # the embedded server listens on a Unix socket: an empty host leaves it to libpq's PGHOST
    env |= {
        "DAGSTER_PG_HOST": "",
        "PGHOST": server["host"],
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PORT": str(server.get("port") or 5432),
        "DAGSTER_PG_DB": server["dbname"],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        # a run and its events, which the event log announces with NOTIFY
        run = instance.add_run(DagsterRun(job_name="deploy_check", run_id=str(uuid.uuid4())))
        instance.report_engine_event("stored and announced", run)
        assert [e.message for e in instance.all_logs(run.run_id)] == ["stored and announced"]
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from runs").fetchone() == (1,)


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that asks for a password; its URL without the password, as the containers
    carry it (the password goes in PGPASSWORD: no URL escaping, nothing in `ps`)."""
    pgdata = tmp_path_factory.mktemp("pg-password") / "data"
    url = password_server(pgdata, PASSWORD)
    yield url.replace(f":{quote(PASSWORD, safe='')}@", "@", 1)
    embedded.stop(pgdata)


def test_every_database_client_takes_the_password_from_pgpassword(protected, monkeypatch):
    """The containers set QTIS_DATABASE_URL without a password and PGPASSWORD beside it: the
    warehouse (psycopg), the Arrow reads (ADBC), MLflow and Optuna (SQLAlchemy) and dbt all
    connect with it."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert urlsplit(protected).password is None
    with psycopg.connect(protected) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    one = read_query(protected, psycopg.sql.SQL("select 1::bigint as one"), ONE)
    assert one.to_pylist() == [{"one": 1}]
    with sqlalchemy.create_engine(sqlalchemy_url(protected)).connect() as conn:
        assert conn.execute(sqlalchemy.text("select 1")).scalar() == 1
    for name, value in dbt_env(protected).items():
        monkeypatch.setenv(name, value)
    debug = dbtRunner().invoke(["debug", "--connection", "--project-dir", str(PROJECT_DIR)])
    assert debug.success, debug.exception


def _listening(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections("tcp") if c.laddr.port == port
            and c.status == psutil.CONN_LISTEN}  # fmt: skip


@pytest.mark.parametrize("host", [None, "127.0.0.2"])
def test_trading_metrics_bind_loopback_unless_told_otherwise(market, tmp_path, host):
    """The trading container passes --metrics-host 0.0.0.0 so that Prometheus, in another
    container, can scrape it; without the option the metrics stay on 127.0.0.1. (Here the other
    interface is another loopback address: nothing is opened to the network.)"""
    stream = f"metered-{host or 'default'}"
    args = ["trade", "paper", "--stream", stream, "--signal", "sma-cross", "--fast", "2",
            "--slow", "4", "--start", "2012-10-01", "--bars-per-second", "0",
            "--metrics-port", "0", *(["--metrics-host", host] if host else [])]  # fmt: skip
    env = {"QTIS_DATABASE_URL": market, "QTIS_HOME": str(tmp_path / ".qtis")}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    bound = host or "127.0.0.1"
    shown = re.search(r"metrics: http://([\d.]+):(\d+)/metrics", result.output)
    assert shown and shown[1] == bound, result.output
    port = int(shown[2])
    assert _listening(port) == {bound}
    page = httpx.get(f"http://{bound}:{port}/metrics", timeout=5).text
    assert f'stream="{stream}"' in page


def test_the_systemd_unit_runs_the_live_service_and_restarts_it():
    """deploy/systemd/qtis-trading@.service: `qtis trade live` for the instance's stream,
    restarted after any exit, stopped with SIGTERM and time to finish its bar; no secret in it."""
    unit = (DEPLOY / "systemd" / "qtis-trading@.service").read_text()
    keys = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and line[:1] != "#")
    program, *args = keys["ExecStart"].replace("%i", "live").split()
    assert Path(program).name == "qtis"
    argv = ["qtis", *[a for a in args if not a.startswith("$")]]
    assert parse(argv) == "qtis trade live"
    assert keys["Restart"] == "always" and keys["KillSignal"] == "SIGTERM"
    assert int(keys["TimeoutStopSec"]) >= 30
    assert not re.search(r"(?i)(secret|password|token)\w*=\S", unit)
