"""The real BentoML service in a subprocess on a free port, against a real registry: every
endpoint, auth, each kind of bad input (4xx naming the field, never a 5xx), shadow logging,
hot reload and rollback without dropped requests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest

from quant.conventions import Conventions
from registry import aliases
from registry.model_registry import ModelRegistry
from registry.promotions import champions
from registry.settings import TrackingSettings
from serving.binary import NPY
from serving.champion_source import ChampionSource
from serving.client import ServingClient, ServingError
from serving.errors import NoChampion
from serving.predictor import Predictor
from serving.probe import serving_probe
from serving.schemas import ExplainRequest, PredictRequest, PredictResponse
from serving.settings import ServingSettings
from serving.windows import WindowSource
from tests.support.cli import qtis
from tests.support.db import fresh_database
from tests.support.planted import register
from tests.support.promotion import holders, race, race_start, relaxed
from tests.support.service import free_port, npy, running_service, server_errors
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.settings import RuntimeSettings, WalkForwardSettings
from trading_runtime.walkforward import bar_timeline, walk_forward
from training.data import load_training_data
from training.runner import TrainConfig, run_training
from warehouse.db import sqlalchemy_url

pytestmark = pytest.mark.slow  # a BentoML server in a subprocess over trained models

SYMBOLS = ["IBM", "MSFT"]
PREDICT_TOKEN = "predict-token-for-tests-0001"
ADMIN_TOKEN = "admin-token-for-tests-000002"
MAX_WINDOWS = 8
RACE_ROUNDS = 6


@pytest.fixture(scope="module")
def trained(built, pg_server, tmp_path_factory):
    """xgboost v1 forced to @champion, lstm v1 the @challenger, in a fresh MLflow store."""
    url, _ = built
    home = tmp_path_factory.mktemp("serving") / ".qtis"
    env = {
        "QTIS_MLFLOW_TRACKING_URI": sqlalchemy_url(fresh_database(pg_server)),
        "QTIS_HOME": str(home),
        "QTIS_DATABASE_URL": url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        config = TrainConfig(
            models=("lstm", "xgboost"), size="tiny", epochs=1, splits=2, window=20,
            xgb_estimators=30, explain_samples=0,
        )  # fmt: skip
        tracking = TrackingSettings()
        run_training(url, config, symbols=SYMBOLS, tracking=tracking)
        probe = serving_probe(url, tracking=tracking)
        aliases.force(
            url, "qtis-xgboost", "1", "serving tests", probe, relaxed(), tracking=tracking
        )
        ModelRegistry(url, tracking).move_alias("challenger", "qtis-lstm", "1")
        yield url, env, home


@pytest.fixture(scope="module")
def service(trained, tmp_path_factory):
    url, env, home = trained
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.yml"
    tokens.write_text(f"{PREDICT_TOKEN}: predict\n{ADMIN_TOKEN}: [admin]\n")
    settings_env = env | {
        "QTIS_API_TOKEN_FILE": str(tokens),
        "QTIS_SERVE_RELOAD_SECONDS": "0.5",
        "QTIS_SERVE_MAX_WINDOWS": str(MAX_WINDOWS),
        "QTIS_API_RATE_BURST": "10000",
    }
    with running_service(settings_env, home / "service.log") as base:
        yield base, url, home


@pytest.fixture
def client(service):
    base, *_ = service
    with ServingClient(base, token=PREDICT_TOKEN, retries=0) as c:
        yield c


def windows_from_warehouse(url: str, client: ServingClient, bars: int = 20) -> np.ndarray:
    features = client.info().champion.features
    return WindowSource(url, features).latest(SYMBOLS, None, bars)[0]


def test_predict_windows_and_symbols(service, client):
    _, url, _ = service
    windows = windows_from_warehouse(url, client)
    by_windows = client.predict(PredictRequest(windows=windows.tolist()))
    assert (by_windows.model, by_windows.version, by_windows.role) == (
        "qtis-xgboost",
        "1",
        "champion",
    )
    assert np.shape(by_windows.predictions) == (2, 5) and by_windows.horizons == [1, 2, 5, 10, 20]
    by_symbols = client.predict(PredictRequest(symbols=SYMBOLS))
    assert by_symbols.symbols == SYMBOLS and len(by_symbols.as_of) == 2
    np.testing.assert_allclose(by_symbols.predictions, by_windows.predictions, rtol=1e-6)
    # the in-process predictor answers the same request the same way (same interface)
    local = Predictor(url, ServingSettings(), tracking=TrackingSettings())
    try:
        same = local.predict(PredictRequest(windows=windows.tolist()))
    finally:
        local.close()
    np.testing.assert_allclose(same.predictions, by_windows.predictions, rtol=1e-6)


def test_model_and_explain(client):
    info = client.info()
    assert (info.champion.model, info.champion.version) == ("qtis-xgboost", "1")
    assert (info.challenger.model, info.challenger.version, info.challenger.window) == (
        "qtis-lstm", "1", 20,
    )  # fmt: skip
    assert info.promotion["decision"] == "forced" and "serving tests" in info.promotion["reason"]
    explained = client.explain(ExplainRequest(symbol="IBM"))
    assert explained.method == "tree" and len(explained.attributions) == len(info.champion.features)
    shap = np.array([a.shap for a in explained.attributions])
    # exact TreeSHAP adds up: base value + contributions = the forecast, per horizon
    np.testing.assert_allclose(
        shap.sum(axis=0) + explained.base_values, explained.prediction, atol=1e-5
    )
    sizes = np.abs(shap).sum(axis=1)
    assert (np.diff(sizes) <= 1e-12).all()  # largest first


def test_health_metrics_and_docs_are_open(service, client):
    base, *_ = service
    client.predict(PredictRequest(symbols=["IBM"]))
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(base + path).status_code == 200, path
    assert httpx.get(base + "/docs").status_code in (200, 307)
    spec = httpx.get(base + "/docs.json").json()
    assert {"/predict", "/explain"} <= set(spec["paths"])
    metrics = httpx.get(base + "/metrics").text
    assert 'qtis_predictions_total{model="qtis-xgboost",role="champion",version="1"}' in metrics
    assert "bentoml_service_request_duration_seconds_bucket" in metrics
    assert "qtis_batch_windows_bucket" in metrics
    assert 'qtis_model_version{model="qtis-lstm"' in metrics


def test_auth_roles_and_audit(service):
    base, _, home = service
    body = {"request": {"symbols": ["IBM"]}}
    assert httpx.post(base + "/predict", json=body).status_code == 401
    wrong = httpx.post(base + "/predict", json=body, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unknown token"
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    predictor = {"authorization": f"Bearer {PREDICT_TOKEN}"}
    assert httpx.post(base + "/predict", json=body, headers=admin).status_code == 200
    denied = httpx.post(base + "/admin/reload", json={}, headers=predictor)
    assert denied.status_code == 403 and "admin" in denied.json()["error"]
    assert httpx.post(base + "/admin/reload", json={}, headers=admin).status_code == 200
    audit = home / "logs" / "serving-audit.log"
    for _ in range(40):  # written by a background thread
        if '"status": 200' in (text := audit.read_text() if audit.exists() else ""):
            break
        time.sleep(0.25)
    assert '"status": 403' in text and '"status": 200' in text
    assert '"client": "127.0.0.1"' in text
    assert PREDICT_TOKEN not in text and ADMIN_TOKEN not in text  # only fingerprints


def _bad_requests(features: int) -> list[tuple[str, object, int, str]]:
    window = [[0.1] * features]
    return [
        ("malformed JSON", '{"request": {"symbols": [', 400, "invalid json"),
        ("no request", {}, 400, "request"),
        ("misspelt field", {"request": {"windowz": [window]}}, 400, "windowz"),
        ("both inputs", {"request": {"windows": [window], "symbols": ["IBM"]}}, 400, "exactly one"),
        ("wrong type", {"request": {"windows": "abc"}}, 400, "request.windows"),
        ("ragged", {"request": {"windows": [[[0.1] * features, [0.1]]]}}, 422, "rectangular"),
        ("no bars", {"request": {"windows": [[]]}}, 400, "request.windows.0"),
        ("wrong features", {"request": {"windows": [[[0.1, 0.2]]]}}, 422, f"{features} features"),
        (
            "float32 overflow",
            {"request": {"windows": [[[1e39] * features]]}},
            400,
            "less than or equal",
        ),
        ("oversized", {"request": {"windows": [window] * (MAX_WINDOWS + 1)}}, 413, "at most"),
        ("unknown symbol", {"request": {"symbols": ["IBM", "NOPE"]}}, 404, "NOPE"),
        ("too early", {"request": {"symbols": ["IBM"], "as_of": "1990-01-02"}}, 404, "as_of"),
        ("bad time", {"request": {"symbols": ["IBM"], "as_of": "yesterday"}}, 400, "as_of"),
        ("explain nothing", {"request": {}}, 400, "exactly one"),
    ]


def test_bad_input_is_a_4xx_naming_the_problem(service, client):
    base, *_ = service
    features = len(client.info().champion.features)
    headers = {"authorization": f"Bearer {PREDICT_TOKEN}", "content-type": "application/json"}
    for name, body, status, needle in _bad_requests(features):
        path = "/explain" if name.startswith("explain") else "/predict"
        content = body if isinstance(body, str) else None
        response = httpx.post(
            base + path, content=content, json=None if content else body, headers=headers
        )
        assert response.status_code == status, (name, response.text)
        text = response.json()["error"].lower()
        assert needle.lower() in text or needle.lower() in str(response.json()).lower(), (
            name,
            response.text,
        )
    # NaN is not JSON, but Python's json writes it: refused by name too
    nan = '{"request": {"windows": [[[NaN]]]}}'
    response = httpx.post(base + "/predict", content=nan, headers=headers)
    assert response.status_code == 400 and response.json()["field"] == "request.windows.0.0.0"
    assert server_errors(base) == []


def test_an_npy_body_answers_as_json_does_and_bad_ones_are_a_4xx(service, client):
    base, url, _ = service
    windows = windows_from_warehouse(url, client)
    by_json = client.predict(PredictRequest(windows=windows.tolist()))
    headers = {"authorization": f"Bearer {PREDICT_TOKEN}", "content-type": NPY}

    def post(array: np.ndarray | bytes, path: str = "/predict", **kw) -> httpx.Response:
        body = array if isinstance(array, bytes) else npy(array)
        return httpx.post(base + path, content=body, headers=kw.get("headers", headers))

    answer = post(windows.astype(np.float64))
    assert answer.status_code == 200, answer.text
    by_npy = PredictResponse.model_validate_json(answer.content)
    assert (by_npy.model, by_npy.version, by_npy.role) == (
        by_json.model,
        by_json.version,
        "champion",
    )
    np.testing.assert_array_equal(by_npy.predictions, by_json.predictions)
    features = windows.shape[2]
    for body, status, needle in [
        (b'{"request": {}}', 400, "not a .npy array"),
        (np.ones((1, 20, 2)), 422, f"{features} features"),
        (np.full((1, 20, features), 1e39), 422, "finite 32-bit"),
        (np.ones((MAX_WINDOWS + 1, 20, features)), 413, "at most"),
    ]:
        answer = post(body)
        assert answer.status_code == status and needle in answer.json()["error"], answer.text
    assert post(windows, "/explain").status_code == 415
    assert post(windows, headers={"content-type": NPY}).status_code == 401  # auth still holds
    assert server_errors(base) == []


def test_predict_opens_no_trace_span_unless_asked(service):
    """QTIS_SERVE_TRACE_PREDICT off (the default): BentoML opens no OpenTelemetry span for
    /predict (unexported, they took half of an .npy request's CPU); other routes keep theirs.
    BentoML answers its span's id as X-BentoML-Request-ID, so the header shows which did."""
    base, *_ = service
    headers = {"authorization": f"Bearer {PREDICT_TOKEN}"}
    symbols = {"request": {"symbols": ["IBM"]}}
    predicted = httpx.post(base + "/predict", json=symbols, headers=headers)
    explained = httpx.post(base + "/explain", json={"request": {"symbol": "IBM"}}, headers=headers)
    assert predicted.status_code == explained.status_code == 200, (predicted.text, explained.text)
    assert "x-bentoml-request-id" not in predicted.headers
    assert "x-bentoml-request-id" in explained.headers


def test_the_shadow_challenger_is_logged_and_never_answers(service, client):
    _, url, _ = service
    response = client.predict(PredictRequest(symbols=SYMBOLS))
    assert response.role == "champion" and response.model == "qtis-xgboost"
    rows = []
    for _ in range(40):  # written in the background, in batches
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "select role, served, model, version, predictions from mlops.prediction_log"
                " where request_id = %s order by role",
                (response.request_id,),
            ).fetchall()
        if len(rows) == 2:
            break
        time.sleep(0.25)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("challenger", False, "qtis-lstm"),
        ("champion", True, "qtis-xgboost"),
    ]
    np.testing.assert_allclose(rows[1][4], response.predictions, rtol=1e-6)
    assert np.shape(rows[0][4]) == (2, 5)


def test_ab_split_in_process_records_who_answered(trained):
    url, env, _ = trained
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        from serving.prediction_log import PredictionLog

        local = Predictor(
            url,
            ServingSettings(serve_ab_share=1.0),
            PredictionLog(url, 0.05),
            tracking=TrackingSettings(),
        )
        response = local.predict(PredictRequest(symbols=SYMBOLS))
        local.close()  # flushes the log
    assert (response.role, response.model) == ("challenger", "qtis-lstm")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select role, served from mlops.prediction_log where request_id = %s order by role",
            (response.request_id,),
        ).fetchall()
    assert rows == [("challenger", True), ("champion", False)]


def test_a_pinned_version_answers_as_champion_whatever_the_aliases(trained):
    """What a walk-forward trades a window with: the version champion on that day."""
    url, env, _ = trained
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        tracking = TrackingSettings()
        pinned = Predictor.pinned(
            url, "qtis-lstm", "1", ServingSettings(), tracking
        )  # the challenger, pinned
        assert pinned.reload() == {"champion": "qtis-lstm v1", "challenger": None}
        card = pinned.info().champion
        assert (card.role, card.model, card.version) == ("champion", "qtis-lstm", "1")
        assert pinned.predict(PredictRequest(symbols=SYMBOLS)).model == "qtis-lstm"
        assert ModelRegistry(url, tracking).meta("qtis-lstm", "1").trained_through is not None
        with pytest.raises(NoChampion, match="qtis-lstm v9 cannot be loaded"):
            Predictor.pinned(url, "qtis-lstm", "9", ServingSettings(), tracking)


def test_a_champion_walk_forward_trades_only_windows_after_its_label_end(trained):
    """The champion, trained with the default holdout, trades the windows after the last bar
    its labels saw and refuses, with the reason, one that overlaps it."""
    url, env, _ = trained
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        assert champions(url) == [("qtis-xgboost", "1")]
        tracking = TrackingSettings()
        pinned = Predictor.pinned(url, "qtis-xgboost", "1", ServingSettings(), tracking)
        card = pinned.info().champion
        assert card.trained_through < card.label_end
        days = bar_timeline(url, SYMBOLS)
        after = int(np.searchsorted(days, np.datetime64(card.label_end.date()), side="right"))
        test_bars = (len(days) - after) // 2  # two windows after the label end, one across it
        walk = WalkForwardSettings(windows=3, test_bars=test_bars, train_bars=250,
                                   source="champion")  # fmt: skip
        strategy = StrategyConfig(signal="model", sizing="fixed", quantity=100)
        config = RunConfig(stream="wf-champion", symbols=SYMBOLS, strategies=[strategy])
        source = lambda symbols, horizon: ChampionSource(  # noqa: E731
            url, bar_timeline(url, symbols), horizon, ServingSettings(), tracking
        )
        found = walk_forward(url, config, source, walk, RuntimeSettings(), Conventions())
    across, *traded = found.windows
    assert across.stream is None and across.skipped.startswith("refused: every champion saw")
    for window in traded:
        assert window.model == "qtis-xgboost v1" and window.skipped is None
        assert window.label_end == card.label_end.date() < window.window.test_start
        assert window.metrics["total"]["bars"] > 0
    assert found.metrics["windows_traded"] == 2 and found.metrics["windows_skipped"] == 1


def test_client_retries_then_names_the_failure():
    with ServingClient(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01) as dead:
        started = time.monotonic()
        with pytest.raises(ServingError, match="ConnectError"):
            dead.info()
        assert time.monotonic() - started < 10
        assert dead.ready() is False


def test_client_raises_4xx_at_once_with_the_field(client):
    with pytest.raises(ServingError) as caught:
        client.predict(PredictRequest(symbols=["NOPE"]))
    assert caught.value.status == 404 and caught.value.field == "symbols"


def test_the_engine_trades_the_champion_in_process_and_over_http(service, trained, monkeypatch):
    """The trading runtime reaches the model through the client interface: the same backtest
    against the in-process predictor and against the running service fills identically."""
    from trading_runtime.config import RunConfig, StrategyConfig
    from trading_runtime.runs import run

    url, env, _ = trained
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("QTIS_API_TOKEN", PREDICT_TOKEN)
    strategy = StrategyConfig(signal="model", sizing="vol-target")
    results = {}
    for name, model_url in (("local", None), ("http", service[0])):
        config = RunConfig(
            stream=f"model-{name}", symbols=SYMBOLS, start="2012-09-04", strategies=[strategy],
            model_url=model_url, in_sample=True,  # the paths must agree; honesty is tested apart
        )  # fmt: skip
        results[name] = run(url, config).to_json()
    local, http = results["local"], results["http"]
    assert len(local["fills"]) > 5
    assert local["fills"] == http["fills"] and local["equity_curve"] == http["equity_curve"]


def test_hot_reload_and_rollback_drop_no_request(service, trained):
    """Move @champion while requests flow: the service picks the new version up by itself; the
    admin rollback brings the old one back. Every request in between is answered."""
    base, url, _ = service
    _, env, _ = trained
    statuses: list[int] = []
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()
    died: list[BaseException] = []  # what ended the traffic thread early, re-raised below

    def traffic() -> None:
        try:
            with ServingClient(base, token=PREDICT_TOKEN, retries=0, timeout=30) as c:
                while not stop.is_set():
                    try:
                        answer = c.predict(PredictRequest(symbols=SYMBOLS))
                        statuses.append(200)
                        versions.add(f"{answer.model} v{answer.version}")
                    except ServingError as exc:
                        statuses.append(exc.status or 0)
                        failures.append(str(exc))
        except BaseException as exc:
            died.append(exc)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        time.sleep(0.5)
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            tracking = TrackingSettings()
            probe = serving_probe(url, samples=5, tracking=tracking)
            aliases.force(url, "qtis-lstm", "1", "reload test", probe, relaxed(), tracking=tracking)
        deadline = time.monotonic() + 20
        with ServingClient(base, token=ADMIN_TOKEN, retries=0) as admin:
            while time.monotonic() < deadline and admin.info().champion.model != "qtis-lstm":
                time.sleep(0.2)
            assert admin.info().champion.model == "qtis-lstm"
            assert admin.info().challenger is None  # it was the challenger: never both
            time.sleep(0.5)
            rolled = admin.rollback("test over")
            assert rolled["champion"] == "qtis-xgboost v1"
            assert admin.info().champion.model == "qtis-xgboost"
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join(timeout=30)
    assert not sender.is_alive(), "the traffic thread did not stop"
    if died:
        raise AssertionError("the traffic thread died") from died[0]
    assert statuses and set(statuses) == {200}, failures[:5]
    assert versions == {"qtis-xgboost v1", "qtis-lstm v1"}
    assert server_errors(base) == []


def test_promotions_racing_api_rollbacks_leave_one_champion_and_no_5xx(service, trained):
    """A promotion (the challenger replacing the champion) in process and POST /admin/rollback
    on the service start together, many times: the moves take turns (one champion, the record
    names what each replaced), the service answers each rollback 200 or 409 (never a 5xx) and
    serves whatever holds @champion afterwards."""
    base, url, _ = service
    _, env, _ = trained
    answers: list[int] = []
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        third = register(url, load_training_data(url, SYMBOLS), 1.0, seed=31, family="transformer")
        a, b, c = ("qtis-xgboost", "1"), ("qtis-lstm", "1"), ("qtis-transformer", third)
        tracking = TrackingSettings()
        registry = ModelRegistry(url, tracking)
        probe = serving_probe(url, samples=3, tracking=tracking)
        promote = partial(aliases.replace_with_challenger, url, probe=probe, tracking=tracking)

        def api_rollback(admin: ServingClient, reason: str) -> None:
            try:
                admin.rollback(reason)
                answers.append(200)
            except ServingError as exc:
                answers.append(exc.status or 0)

        with ServingClient(base, token=ADMIN_TOKEN, retries=0, timeout=60) as admin:
            for round_ in range(RACE_ROUNDS):
                race_start(url, probe, a, b, c, tracking)
                reason = f"race {round_}"
                errors = race(
                    lambda: promote(reason=reason),  # noqa: B023
                    lambda: api_rollback(admin, reason),  # noqa: B023
                )
                assert errors == [], f"round {round_}"
                assert len(holders(registry, "champion")) == 1, f"round {round_}: two champions"
                admin.reload()
                served = admin.info().champion
                assert (served.model, served.version) == registry.champion() == champions(url)[-1]
            if registry.champion() != a:  # as the module found it
                aliases.force(url, *a, "race over", probe, relaxed(), tracking=tracking)
            registry.move_alias("challenger", *b)
    assert set(answers) <= {200, 409} and 200 in answers, answers
    assert server_errors(base) == []


def test_serve_refuses_to_start_without_a_champion(db_url, tmp_path):
    env = {"QTIS_DATABASE_URL": db_url, "QTIS_HOME": str(tmp_path / ".qtis")}
    env["QTIS_MLFLOW_TRACKING_URI"] = sqlalchemy_url(db_url)
    result = qtis("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2, result.stderr
    assert "no model holds @champion" in " ".join(result.stderr.split())


def test_token_file_errors_name_the_problem(tmp_path):
    from serving.auth import TokenFileError, TokenTable

    bad = tmp_path / "tokens.yml"
    bad.write_text("short: predict\n")
    with pytest.raises(TokenFileError, match="shorter than 16"):
        TokenTable.from_settings(ServingSettings(api_token_file=bad))
    bad.write_text("a-long-enough-token-123: trader\n")
    with pytest.raises(TokenFileError, match="must be one of predict, admin"):
        TokenTable.from_settings(ServingSettings(api_token_file=bad))
    missing = Path(os.devnull).parent / "no-such-dir" / "tokens.yml"
    with pytest.raises(TokenFileError, match="cannot read"):
        TokenTable.from_settings(ServingSettings(api_token_file=missing))


def test_bentoml_build_packages_the_service(tmp_path):
    env = os.environ | {"BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    root = Path(__file__).resolve().parents[2]
    built = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "qtis-serving").glob("*/bento.yaml"))
    assert len(bentos) == 1
    assert (bentos[0].parent / "src" / "serving" / "service.py").exists()
    bento = bentos[0].read_text()  # closed by default: loopback unless the deployment says
    assert "QTIS_SERVE_HOST" in bento and "127.0.0.1" in bento and "QTIS_API_OPEN" in bento
