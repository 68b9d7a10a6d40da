"""A run's options as the `qtis trade` commands take them - flat names, NAME=VALUE pairs, a
strategies YAML - turned into a ``RunConfig`` (and a walk-forward's settings); and a paper run's
resume: a stream that already started runs again with the configuration it started with."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trading_runtime import events as ev
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.settings import RiskLimits, WalkForwardSettings

# the command's option -> the RunConfig.costs field
COST_OPTIONS = {"commission_bps": "commission_bps", "commission_per_share": "commission_per_share",
                "spread_bps": "half_spread_bps", "slippage": "slippage",
                "slippage_bps": "slippage_bps", "participation": "participation"}  # fmt: skip
# options that are RunConfig fields (the others are StrategyConfig fields or the command's own)
RUN_KEYS = {"symbols", "start", "end", "free_costs", "model_url", "bars_per_second", "in_sample",
            "execution"}  # fmt: skip
PLAN_KEYS = ("windows", "train_bars", "test_bars", "mode", "source", "purge")


class OptionError(ValueError):
    """An option that makes no run; the message names the option and what it expects."""


def split_symbols(values: list[str] | None) -> list[str] | None:
    """Repeated or comma-separated symbols, upper-cased; None for none."""
    out = [s.strip().upper() for v in values or [] for s in v.split(",") if s.strip()]
    return out or None


def parse_limits(pairs: list[str] | None) -> dict[str, Any]:
    """``--limit NAME=VALUE`` pairs as RiskLimits fields (none/off: no limit)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in RiskLimits.model_fields:
            known = ", ".join(RiskLimits.model_fields)
            raise OptionError(f"--limit {pair!r}: expected NAME=VALUE with NAME one of {known}")
        out[key] = None if value.lower() in ("none", "off", "") else yaml.safe_load(value)
    return out


def portfolio_options(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The --portfolio method and its options as a PortfolioConfig's fields."""
    if raw.get("portfolio") is None:
        return None
    caps = {}
    for pair in raw.get("sector_cap") or []:
        sector, sep, cap = pair.partition("=")
        if not sep:
            raise OptionError(
                f"--sector-cap {pair!r}: expected SECTOR=MAX_WEIGHT, e.g. technology=0.4"
            )
        caps[sector.strip()] = yaml.safe_load(cap)
    names = ("covariance", "lookback", "rebalance_every", "long_short", "turnover")
    options = {k: raw[k] for k in names if raw.get(k) is not None}
    return {"method": raw["portfolio"], **options} | ({"sector_caps": caps} if caps else {})


def run_options(raw: dict[str, Any]) -> dict[str, Any]:
    """A command's option values as RunConfig / StrategyConfig fields."""
    sizing = raw["sizing"] or {"buy-and-hold": "equal"}.get(raw["signal"], "vol-target")
    return raw | {
        "sizing": sizing,
        "symbols": split_symbols(raw["symbols"]),
        "start": raw["start"].date() if raw["start"] else None,
        "end": raw["end"].date() if raw["end"] else None,
        "limits": parse_limits(raw["limit"]),
        "costs": {field: raw.get(option) for option, field in COST_OPTIONS.items()},
        "bars_per_second": raw.get("bars_per_second") or None,
        "portfolio": portfolio_options(raw),
    }


def run_config(
    mode: str, stream: str, options: dict[str, Any], strategies_file: Path | None
) -> RunConfig:
    """The run of ``run_options``: one strategy from the options, or the strategies file's."""
    strategy_keys = set(StrategyConfig.model_fields) - {"limits"}
    strategy = {k: v for k, v in options.items() if k in strategy_keys and v is not None}
    run = {k: v for k, v in options.items() if k in RUN_KEYS and v is not None}
    costs = {k: v for k, v in options["costs"].items() if v is not None}
    try:
        if strategies_file is not None:
            loaded = yaml.safe_load(strategies_file.read_text()) or {}
            strategies = [StrategyConfig(**s) for s in loaded.get("strategies", [])]
            if not strategies:
                raise OptionError(f"{strategies_file} lists no strategies (a 'strategies:' list)")
            costs = {**loaded.get("costs", {}), **costs}
        else:
            limits = dict(options["limits"])
            strategies = [StrategyConfig(**strategy, limits=limits)]
        return RunConfig(mode=mode, stream=stream, strategies=strategies, costs=costs, **run)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise OptionError(f"invalid run configuration: {problems}") from exc


def with_challenger(config: RunConfig) -> RunConfig:
    """--challenger-shadow: the strategy on the champion, and the same strategy on the
    challenger in a shadow book."""
    main = config.strategies[0]
    if len(config.strategies) != 1 or main.signal != "model":
        raise OptionError(
            "--challenger-shadow goes with --signal model (a --strategies file marks its own"
            " shadow strategies: shadow: true, model_role: challenger)"
        )
    update = {"name": "challenger", "model_role": "challenger", "shadow": True}
    return config.model_copy(update={"strategies": [main, main.model_copy(update=update)]})


def new_stream(kind: str) -> str:
    """A fresh stream name: ``<kind>-<today>-<6 hex>``."""
    return f"{kind}-{date.today():%Y%m%d}-{uuid.uuid4().hex[:6]}"


def backtest_config(
    stream: str | None,
    options: dict[str, Any],
    strategies_file: Path | None,
    challenger_shadow: bool = False,
) -> RunConfig:
    """`qtis trade backtest`: the run of a command's raw options (a new stream unless named)."""
    name = stream or new_stream("backtest")
    config = run_config("backtest", name, run_options(options), strategies_file)
    return with_challenger(config) if challenger_shadow else config


def walk_forward_config(
    stream: str | None, raw: dict[str, Any], strategies_file: Path | None
) -> tuple[RunConfig, WalkForwardSettings]:
    """`qtis trade walkforward`: the plan (checked first) and the run each window trades."""
    settings = walk_forward_settings(raw)
    name = stream or new_stream("walkforward")
    return run_config("backtest", name, run_options(raw), strategies_file), settings


def walk_forward_settings(raw: dict[str, Any]) -> WalkForwardSettings:
    """The plan options given (the others from QTIS_WALKFORWARD_*)."""
    plan = {k: raw[k] for k in PLAN_KEYS}
    try:
        return WalkForwardSettings(**{k: v for k, v in plan.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        raise OptionError(f"invalid walk-forward: {problems}") from exc


def started_config(url: str, stream: str) -> RunConfig | None:
    """The configuration a stream started with; None for a new stream."""
    journal = Journal(url, stream)
    try:
        first = next(journal.read(types=[ev.RUN_STARTED]), None)
    finally:
        journal.close()
    return None if first is None else RunConfig(**first.config)


def paper_config(
    url: str,
    stream: str,
    options: dict[str, Any],
    strategies_file: Path | None,
    challenger_shadow: bool = False,
) -> tuple[RunConfig, bool]:
    """`qtis trade paper`: the stream's own configuration when it already started (a resume:
    True), else the options' (already through ``run_options``)."""
    started = started_config(url, stream)
    if started is not None:
        return started, True
    config = run_config("paper", stream, options, strategies_file)
    return (with_challenger(config) if challenger_shadow else config), False


def live_config(
    url: str,
    stream: str,
    options: dict[str, Any],
    strategies_file: Path | None,
    first_day: Callable[[str, list[str] | None], date],
) -> tuple[RunConfig, bool]:
    """`qtis trade live`: the stream's own configuration when it already started (a resume:
    True), else the options', trading from ``first_day`` (the day after the newest stored bar:
    what is stored is warm-up history)."""
    started = started_config(url, stream)
    if started is not None:
        if started.mode != "live":
            raise OptionError(f"stream {stream!r} is a {started.mode} stream: use another --stream")
        return started, True
    options = options | {"start": first_day(url, options["symbols"])}
    return run_config("live", stream, options, strategies_file), False


def venue_log(home: Path, stream: str) -> Path:
    """The simulated venue's order log of a paper stream, under ``home`` (QTIS_HOME)."""
    path = home / "venue" / f"{stream}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
