"""The qtis command line, run as a real subprocess like a user would."""

import json

import psycopg
import pytest

from tests.support.cli import qtis


@pytest.mark.storage
def test_ingest_json_and_rerun(qtis_env, tmp_path):
    env = {"QTIS_DATABASE_URL": qtis_env, "QTIS_HOME": str(tmp_path / ".qtis")}
    out = qtis(
        "ingest", "--source", "synthetic", "--n-symbols", "3", "--n-bars", "50", "--json", env=env
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["inserted"] == 150 and report["quarantined"] == 0
    again = json.loads(
        qtis(
            "ingest",
            "--source",
            "synthetic",
            "--n-symbols",
            "3",
            "--n-bars",
            "50",
            "--json",
            env=env,
        ).stdout
    )
    assert again["unchanged"] == 150 and again["inserted"] == 0


@pytest.mark.storage
def test_malformed_file_gives_one_clear_error(qtis_env, tmp_path):
    env = {"QTIS_DATABASE_URL": qtis_env, "QTIS_HOME": str(tmp_path / ".qtis")}
    bad = tmp_path / "prices.csv"
    bad.write_text("date,open,high,low\n2020-01-02,1,2,0.5\n")
    out = qtis("ingest", "--source", "csv", "--path", str(bad), env=env)
    assert out.returncode == 2
    assert f"{bad}: missing required column(s): close (found" in " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr
    with psycopg.connect(qtis_env) as conn:
        assert conn.execute("select count(*) from market.bars").fetchone()[0] == 0


@pytest.mark.storage
def test_csv_with_quarantine_prints_reasons(qtis_env, tmp_path):
    env = {"QTIS_DATABASE_URL": qtis_env, "QTIS_HOME": str(tmp_path / ".qtis")}
    path = tmp_path / "AAA.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n2020-01-03,1,2,0.5,1.5,-1\n"
    )
    out = qtis("ingest", "--source", "csv", "--path", str(path), env=env)
    assert out.returncode == 0, out.stderr
    assert "1 quarantined" in out.stdout and "volume: must be >= 0" in out.stdout


@pytest.mark.storage
def test_db_status_and_url_on_external_database(qtis_env, tmp_path, backend):
    env = {"QTIS_DATABASE_URL": qtis_env, "QTIS_HOME": str(tmp_path / ".qtis")}
    assert qtis("db", "url", env=env).stdout.strip() == qtis_env
    status = qtis("db", "status", env=env)
    from warehouse.schema import head_revision

    assert status.returncode == 0 and f"schema revision: {head_revision()}" in status.stdout
    storage = {"embedded": "partitioned", "timescale": "timescaledb"}[backend]
    assert f"market.bars storage: {storage}" in status.stdout


@pytest.mark.slow
def test_embedded_server_lifecycle(tmp_path):
    env = {"QTIS_DATABASE_URL": "", "QTIS_HOME": str(tmp_path / ".qtis")}
    assert qtis("db", "status", env=env).returncode == 1
    up = qtis("db", "up", env=env)
    assert up.returncode == 0, up.stderr
    assert "database ready" in up.stdout
    try:
        status = qtis("db", "status", env=env)
        assert "running" in status.stdout
        psql = qtis("db", "psql", "-tAc", "select count(*) from market.bars", env=env)
        assert psql.stdout.strip() == "0"
    finally:
        assert "stopped" in qtis("db", "down", env=env).stdout
    assert "stopped" in qtis("db", "status", env=env).stdout
