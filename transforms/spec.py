"""The feature spec (feature_spec.yml) as typed Python: output columns, warm-ups, dbt vars.

Column names and warm-up lengths are derived here once; the dbt models receive them through
``--vars`` and the online engine reads them from the same objects, so the two cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError

SPEC_PATH = Path(__file__).with_name("feature_spec.yml")
STAGES = ("recursive", "windowed", "cross_asset", "calendar", "garch")
CALENDAR_COLUMNS = (
    "day_of_week",
    "month",
    "is_month_end",
    "is_quarter_end",
    "days_to_month_end",
    "is_turn_of_month",
    "is_pre_holiday",
    "is_post_holiday",
)


class SpecError(ValueError, ConfigError):
    """The feature spec file is not valid; the message names the entry."""


def _single(e: dict) -> tuple[list[str], list[int]]:
    return [e["name"]], [0]


def _windowed(lag: int) -> Callable[[dict], tuple[list[str], list[int]]]:
    """One output, null for the first ``window - 1 + lag`` bars."""
    return lambda e: ([e["name"]], [e["window"] - 1 + lag])


def _macd(e: dict) -> tuple[list[str], list[int]]:
    slow, signal = e["slow"], e["signal"]
    return ["macd", "macd_signal", "macd_hist"], [slow - 1, slow + signal - 2, slow + signal - 2]


def _bbands(e: dict) -> tuple[list[str], list[int]]:
    w = e["window"]
    names = [f"bb_{part}_{w}" for part in ("upper", "middle", "lower", "pctb", "width")]
    return names, [w - 1] * 5


def _stoch(e: dict) -> tuple[list[str], list[int]]:
    k, d = e["k_window"], e["d_window"]
    return [f"stoch_k_{k}", f"stoch_d_{d}"], [k - 1, k + d - 2]


def _range(e: dict) -> tuple[list[str], list[int]]:
    w = e["window"]
    return [f"high_{w}", f"low_{w}", f"dist_high_{w}", f"dist_low_{w}"], [w - 1] * 4


def _pivots(e: dict) -> tuple[list[str], list[int]]:
    return ["pivot", "pivot_r1", "pivot_s1", "pivot_r2", "pivot_s2"], [1] * 5


def _market(e: dict) -> tuple[list[str], list[int]]:
    w = e["window"]
    return [f"corr_mkt_{w}", f"beta_mkt_{w}"], [w, w]


# kind -> (required parameters, outputs and warm-up bars per output)
KINDS: dict[str, tuple[tuple[str, ...], Callable[[dict], tuple[list[str], list[int]]]]] = {
    "ema": (("window",), _windowed(0)),
    "macd": (("fast", "slow", "signal"), _macd),
    "rsi": (("window",), _windowed(1)),
    "atr": (("window",), _windowed(1)),
    "psar": (("acceleration", "maximum"), lambda e: ([e["name"]], [1])),
    "obv": ((), _single),
    "vpt": ((), _single),
    "ad": ((), _single),
    "log_return": ((), lambda e: ([e["name"]], [1])),
    "sma": (("window",), _windowed(0)),
    "bbands": (("window", "k"), _bbands),
    "stoch": (("k_window", "d_window"), _stoch),
    "willr": (("window",), _windowed(0)),
    "roc": (("window",), _windowed(1)),
    "volume_z": (("window",), _windowed(0)),
    "hist_vol": (("window",), _windowed(1)),
    "range": (("window",), _range),
    "pivots": ((), _pivots),
    "market": (("window",), _market),
    "rel_strength": (("window",), _windowed(1)),
    "sector_relative": ((), lambda e: ([e["name"]], [1])),
}
# kind -> the bar inputs it reads (o/h/l/c/v: open, high, low, close, volume). A bar store may
# lack all but close (a close-only price panel); a feature needing an input its symbol lacks is
# null there, in dbt and online alike (docs/features.md).
INPUT_COLUMNS = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}
KIND_INPUTS: dict[str, str] = {
    "ema": "c",
    "macd": "c",
    "rsi": "c",
    "atr": "hlc",
    "psar": "hl",
    "obv": "cv",
    "vpt": "cv",
    "ad": "hlcv",
    "log_return": "c",
    "sma": "c",
    "bbands": "c",
    "stoch": "hlc",
    "willr": "hlc",
    "roc": "c",
    "volume_z": "v",
    "hist_vol": "c",
    "range": "hlc",
    "pivots": "hlc",
    "market": "c",
    "rel_strength": "c",
    "sector_relative": "c",
}
STAGE_KINDS = {
    "recursive": {"ema", "macd", "rsi", "atr", "psar", "obv", "vpt", "ad"},
    "windowed": {
        "log_return",
        "sma",
        "bbands",
        "stoch",
        "willr",
        "roc",
        "volume_z",
        "hist_vol",
        "range",
        "pivots",
    },
    "cross_asset": {"market", "rel_strength", "sector_relative"},
}
# outputs in price or cumulative-volume units: they follow the price path, so their distribution
# moves whenever prices trend, with no change in how the market behaves (kind -> output prefixes,
# empty: all of its outputs)
LEVEL_OUTPUTS: dict[str, tuple[str, ...]] = dict.fromkeys(
    ("ema", "macd", "atr", "psar", "obv", "vpt", "ad", "sma", "pivots"), ()
) | {"bbands": ("bb_upper_", "bb_middle_", "bb_lower_"), "range": ("high_", "low_")}


@dataclass(frozen=True)
class Feature:
    """One spec entry: a kind with parameters, producing one or more columns."""

    name: str
    kind: str
    stage: str
    params: dict[str, Any]
    outputs: tuple[str, ...]
    warmups: tuple[int, ...]

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def window(self) -> int:
        return int(self.params.get("window", 0))

    @property
    def inputs(self) -> str:
        """The bar inputs it reads, as letters (``"hlc"``): see ``INPUT_COLUMNS``."""
        return KIND_INPUTS[self.kind]


@dataclass(frozen=True)
class GarchSpec:
    name: str = "garch_vol"
    p: int = 1
    q: int = 1
    window: int = 1000
    min_obs: int = 250
    refit_every: int = 21


# series kind -> (its length parameter, observations it reads back from the latest, inclusive)
SERIES_KINDS: dict[str, tuple[str | None, Callable[[int], int]]] = {
    "value": (None, lambda n: 1),
    "change": ("releases", lambda k: k + 1),
    "zscore": ("window", lambda n: n),
    "surprise": ("window", lambda n: n + 1),
}


@dataclass(frozen=True)
class SeriesFeature:
    """A feature of one point-in-time series (market.series), as known at each bar."""

    name: str
    series: str
    kind: str
    length: int  # releases (change) or window (zscore, surprise); 0 for value

    @property
    def depth(self) -> int:
        """Observations it reads: the latest and the ones before it."""
        return SERIES_KINDS[self.kind][1](self.length)


@dataclass(frozen=True)
class SeriesSpec:
    """``series:`` of the spec. ``train`` puts the columns into features.bar_features (and so
    the training set and the models' inputs); otherwise they live in features.series_features
    only, and the default feature set does not change."""

    train: bool = False
    features: tuple[SeriesFeature, ...] = ()

    def columns(self) -> list[str]:
        return [f.name for f in self.features]

    def depths(self) -> dict[str, int]:
        """Per series, the most observations any of its features reads."""
        out: dict[str, int] = {}
        for f in self.features:
            out[f.series] = max(out.get(f.series, 0), f.depth)
        return out


@dataclass(frozen=True)
class FeatureSpec:
    bars_per_year: float
    features: tuple[Feature, ...]
    benchmark: str | None
    turn_of_month_before: int
    turn_of_month_after: int
    garch: GarchSpec
    horizons: tuple[int, ...]
    series: SeriesSpec = SeriesSpec()
    warmups: dict[str, int] = field(default_factory=dict)

    def stage(self, stage: str) -> list[Feature]:
        return [f for f in self.features if f.stage == stage]

    def columns(self, stage: str | None = None) -> list[str]:
        """Feature columns of ``features.bar_features`` in table order (or of one stage)."""
        cols = [c for f in self.features if stage in (None, f.stage) for c in f.outputs]
        if stage in (None, "calendar"):
            cols += list(CALENDAR_COLUMNS)
        if stage in (None, "garch"):
            cols.append(self.garch.name)
        if stage in (None, "series") and self.series.train:
            cols += self.series.columns()
        return cols

    def column_inputs(self) -> dict[str, str]:
        """Every feature column -> the bar inputs it reads (calendar columns: none, only the
        bar's time)."""
        inputs = {c: f.inputs for f in self.features for c in f.outputs}
        return inputs | dict.fromkeys(CALENDAR_COLUMNS, "") | {self.garch.name: "c"}

    def columns_needing(self, missing: str) -> list[str]:
        """Feature columns, in table order, that read any of the ``missing`` inputs (letters):
        null for a symbol without them."""
        needs = self.column_inputs()
        return [c for c in self.columns() if set(needs[c]) & set(missing)]

    def level_columns(self) -> list[str]:
        """Columns in price or cumulative-volume units (see ``LEVEL_OUTPUTS``)."""
        return [
            c
            for f in self.features
            if f.kind in LEVEL_OUTPUTS
            for c in f.outputs
            if not LEVEL_OUTPUTS[f.kind] or c.startswith(LEVEL_OUTPUTS[f.kind])
        ]

    def label_columns(self) -> list[str]:
        return [f"{kind}_{h}" for h in self.horizons for kind in ("fwd_ret", "fwd_dir", "fwd_vol")]

    @property
    def lookback(self) -> int:
        """Bars an incremental run re-reads before each symbol's last row (longest window)."""
        windows = [w for f in self.features if f.stage != "recursive" for w in f.warmups]
        return max(windows, default=0) + 1

    def dbt_vars(self) -> dict[str, Any]:
        """What the dbt models see as ``var('qtis')``."""

        def entry(f: Feature) -> dict[str, Any]:
            return {"name": f.name, "kind": f.kind, "outputs": list(f.outputs), **f.params}

        return {
            "bars_per_year": self.bars_per_year,
            "lookback": self.lookback,
            "benchmark": self.benchmark,
            "turn_of_month_before": self.turn_of_month_before,
            "turn_of_month_after": self.turn_of_month_after,
            "garch_column": self.garch.name,
            "horizons": list(self.horizons),
            "max_horizon": max(self.horizons),
            "series": [
                {"name": f.name, "series": f.series, "kind": f.kind, "length": f.length}
                for f in self.series.features
            ],
            "series_depth": self.series.depths(),
            "series_train": self.series.train,
            **{s: [entry(f) for f in self.stage(s)] for s in STAGE_KINDS},
        }


def _feature(stage: str, raw: Any) -> Feature:
    if not isinstance(raw, dict) or "name" not in raw or "kind" not in raw:
        raise SpecError(f"{stage}: every entry needs 'name' and 'kind', got {raw!r}")
    name, kind = raw["name"], raw["kind"]
    if kind not in STAGE_KINDS[stage]:
        allowed = ", ".join(sorted(STAGE_KINDS[stage]))
        raise SpecError(f"{stage}/{name}: kind {kind!r} does not belong here (allowed: {allowed})")
    required, outputs_of = KINDS[kind]
    params = {k: v for k, v in raw.items() if k not in ("name", "kind")}
    missing = [p for p in required if p not in params]
    if missing:
        raise SpecError(f"{stage}/{name}: missing parameter(s) {', '.join(missing)}")
    for key, value in params.items():
        is_length = "window" in key or key in ("fast", "slow", "signal")
        if is_length and (not isinstance(value, int) or value < 1):
            raise SpecError(f"{stage}/{name}: {key} must be a positive integer, got {value!r}")
    outputs, warmups = outputs_of(raw)
    return Feature(name, kind, stage, params, tuple(outputs), tuple(warmups))


def _series_feature(raw: Any) -> SeriesFeature:
    if not isinstance(raw, dict) or not {"name", "series", "kind"} <= raw.keys():
        raise SpecError(f"series: every entry needs 'name', 'series' and 'kind', got {raw!r}")
    name, kind = raw["name"], raw["kind"]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", str(name)):  # a column name in the SQL as it is
        raise SpecError(f"series/{name}: a name is lower-case letters, digits and _")
    if kind not in SERIES_KINDS:
        raise SpecError(f"series/{name}: kind {kind!r} is not one of {', '.join(SERIES_KINDS)}")
    param = SERIES_KINDS[kind][0]
    length = raw.get(param, 0) if param else 0
    if param and (not isinstance(length, int) or isinstance(length, bool) or length < 1):
        raise SpecError(f"series/{name}: {param} must be a positive integer, got {length!r}")
    if kind == "zscore" and length < 2:
        raise SpecError(f"series/{name}: a z-score needs a window of at least 2")
    unknown = set(raw) - {"name", "series", "kind", *([param] if param else [])}
    if unknown:
        raise SpecError(f"series/{name}: unknown parameter(s) {', '.join(sorted(unknown))}")
    return SeriesFeature(str(name), str(raw["series"]), kind, int(length))


def _series(raw: Any) -> SeriesSpec:
    raw = raw or {}
    train = raw.get("train", False)
    if not isinstance(train, bool):
        raise SpecError(f"series.train must be true or false, got {train!r}")
    return SeriesSpec(train, tuple(_series_feature(e) for e in raw.get("features") or []))


def parse_spec(raw: dict[str, Any]) -> FeatureSpec:
    features = [_feature(s, e) for s in ("recursive", "windowed") for e in raw.get(s) or []]
    cross = raw.get("cross_asset") or {}
    features += [_feature("cross_asset", e) for e in cross.get("features") or []]
    garch = GarchSpec(**(raw.get("garch") or {}))
    tom = (raw.get("calendar") or {}).get("turn_of_month") or {}
    horizons = tuple((raw.get("labels") or {}).get("horizons") or ())
    if not horizons or any(not isinstance(h, int) or h < 1 for h in horizons):
        raise SpecError(f"labels.horizons must be positive integers, got {horizons!r}")
    spec = FeatureSpec(
        bars_per_year=float(raw.get("bars_per_year", 252)),
        features=tuple(features),
        benchmark=cross.get("benchmark"),
        turn_of_month_before=int(tom.get("before", 1)),
        turn_of_month_after=int(tom.get("after", 3)),
        garch=garch,
        horizons=horizons,
        series=_series(raw.get("series")),
    )
    columns = spec.columns() + ([] if spec.series.train else spec.series.columns())
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise SpecError(f"duplicate feature columns: {', '.join(duplicated)}")
    warmups = {c: w for f in features for c, w in zip(f.outputs, f.warmups, strict=True)}
    warmups |= dict.fromkeys(CALENDAR_COLUMNS, 0) | {garch.name: garch.min_obs}
    if spec.series.train:  # defined from the first release on, whatever the bar count
        warmups |= dict.fromkeys(spec.series.columns(), 0)
    object.__setattr__(spec, "warmups", warmups)
    return spec


def load_spec(path: Path | str | None = None) -> FeatureSpec:
    path = Path(path) if path else SPEC_PATH
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read feature spec {path}: {exc}") from exc
    return parse_spec(raw or {})


@cache
def default_spec() -> FeatureSpec:
    return load_spec()
