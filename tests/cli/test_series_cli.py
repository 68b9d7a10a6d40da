"""`qtis series ingest`, run as a real subprocess like a user would."""

import json

from tests.support.cli import qtis
from warehouse.series import series_summary


def test_ingest_a_fred_file(qtis_env, tmp_path):
    env = {"QTIS_DATABASE_URL": qtis_env, "QTIS_HOME": str(tmp_path / ".qtis")}
    path = tmp_path / "UNRATE.csv"
    path.write_text("observation_date,UNRATE\n2020-01-01,3.5\n2020-02-01,.\n2020-03-01,4.4\n")
    out = qtis("series", "ingest", str(path), "--release-lag", "7", "--json", env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["series"], report["inserted"], report["missing"]) == (["UNRATE"], 2, 1)
    (stored,) = series_summary(qtis_env)
    # January ends 01-31, 7 days on is 02-07: known from the start of 02-08 in New York
    assert (stored.series_id, stored.observations, f"{stored.first_release:%Y-%m-%d %H}") == (
        "UNRATE",
        2,
        "2020-02-08 05",
    )
