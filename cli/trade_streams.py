"""``qtis trade`` on existing journal streams: list them, report and compare them, show their
state and orders, verify and export their journal, and the operator's overrides (halt, resume,
limits)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Literal, TextIO

import typer

from cli.common import console, err, fail, ready_url, write_json
from cli.render.trading import (
    print_comparison,
    print_effects,
    print_orders,
    print_report,
    print_status,
    print_streams,
)
from quant.conventions import Conventions
from trading_runtime.analytics.conventions import conventions
from trading_runtime.audit import COLUMNS, BrokenJournal, OrderAudit, audit_trail
from trading_runtime.journal import Journal, streams
from trading_runtime.run_options import OptionError, parse_limits
from trading_runtime.settings import RiskReportSettings, RuntimeSettings
from trading_runtime.verify import verify

Stream = Annotated[str, typer.Option(help="Journal stream of the run")]
Reason = Annotated[str, typer.Option(help="why: goes into the journal")]
Account = Annotated[str | None, typer.Option(help="one sub-account; default all")]
Actor = Annotated[str | None, typer.Option(help="who; default the OS user")]


def run_conventions() -> Conventions:
    """The analytics conventions of a command (QTIS_ANALYTICS_*), built once here: per year
    the engine's bars (QTIS_TRADE_BARS_PER_YEAR), the figure a run's own metrics use."""
    return conventions(periods_per_year=RuntimeSettings().bars_per_year)


def live_vs_shadow(result, live: str | None = None, shadow: str | None = None):
    """A run's live book against its shadow book."""
    # deferred: sklearn and scipy (~2 s measured) would load on every qtis command
    from trading_runtime.ab import compare

    return compare(result, run_conventions(), live, shadow)


def runs() -> None:
    """Every journal stream with its size and last write."""
    print_streams(streams(ready_url()))


def analysis_of(url: str, stream: str):
    """A stream's analysis (``trading_runtime.analytics``); a missing stream fails the command."""
    # deferred: arch, sklearn, scipy and matplotlib (~3.5 s measured) would load on every qtis
    # command
    from trading_runtime.analytics.analysis import analyze
    from trading_runtime.options import OptionMarket  # deferred: QuantLib, as above

    options = OptionMarket.of(RuntimeSettings())
    try:
        return analyze(url, stream, run_conventions(), RiskReportSettings(), option_market=options)
    except LookupError as exc:
        raise fail(str(exc)) from exc


def write_tear_sheet(analysis, path: Path) -> None:
    # deferred: arch, sklearn, scipy and matplotlib (~4 s measured) would load on every qtis
    # command
    from trading_runtime.analytics.tearsheet import write_tear_sheet

    try:
        written = write_tear_sheet(analysis, path)
    except OSError as exc:
        raise fail(
            f"cannot write the tear sheet to {path}: {exc.strerror or exc}; the run is in stream"
            f" {analysis.stream} (`qtis trade report {analysis.stream} --html OTHER_PATH`)"
        ) from exc
    console.print(f"tear sheet: {written.resolve()}", highlight=False, soft_wrap=True)


def report(
    stream: Annotated[str, typer.Argument(help="journal stream (see `qtis trade runs`)")],
    html: Annotated[Path | None, typer.Option(help="write the HTML tear sheet")] = None,
    json_out: Annotated[
        Path | None, typer.Option(help="write metrics, intervals, execution quality")
    ] = None,
) -> None:
    """An existing stream's metrics with bootstrap intervals, its execution quality against
    the arrival prices, and optionally its tear sheet. Conventions: QTIS_ANALYTICS_*."""
    from training.evaluate import plain  # deferred: torch+lightning (~6 s); NaN as null

    analysis = analysis_of(ready_url(), stream)
    print_report(stream, analysis)
    if json_out is not None:
        try:
            write_json(
                json_out, plain(analysis.to_json()), indent=1, highlight=False, soft_wrap=True
            )
        except OSError as exc:
            raise fail(f"cannot write {json_out}: {exc.strerror or exc}") from exc
    if html is not None:
        write_tear_sheet(analysis, html)


def ab(
    stream: Annotated[str, typer.Argument(help="journal stream with a live and a shadow account")],
    live: Annotated[str | None, typer.Option(help="live account; default its only one")] = None,
    shadow: Annotated[str | None, typer.Option(help="shadow account; default its only one")] = None,
    json_out: Annotated[Path | None, typer.Option(help="write the comparison")] = None,
) -> None:
    """Champion/challenger: a stream's live book against its shadow book - total return,
    Sharpe, and a paired test on the per-bar returns (Diebold-Mariano, HAC variance)."""
    # deferred: sklearn and scipy (~2.5 s measured) would load on every qtis command
    from trading_runtime.runs import report

    try:
        found = live_vs_shadow(report(ready_url(), stream, run_conventions()), live, shadow)
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from exc
    print_comparison(found)
    if json_out is not None:
        from training.evaluate import plain  # deferred: torch+lightning (~6 s); NaN as null

        write_json(json_out, plain(found.to_dict()), indent=1, highlight=False, soft_wrap=True)


def _book(stream: str):
    # deferred: sklearn and scipy (~2 s measured) would load on every qtis command
    from trading_runtime.book import rebuild

    journal = Journal(ready_url(), stream)
    try:
        if not journal.exists():
            raise fail(f"no stream {stream!r} (see `qtis trade runs`)")
        return rebuild(journal)
    finally:
        journal.close()


def status(stream: Stream = "paper", as_json: Annotated[bool, typer.Option("--json")] = False):
    """Positions, open orders, PnL and risk state, rebuilt from the journal."""
    book = _book(stream)
    if as_json:
        console.print_json(json.dumps(book.to_state(), default=str))
        return
    print_status(stream, book)


def orders(
    stream: Stream = "paper",
    last: Annotated[int, typer.Option(help="how many, newest last")] = 20,
    status_: Annotated[str | None, typer.Option("--status", help="e.g. denied, filled")] = None,
) -> None:
    """The stream's orders with their state and why they ended where they did."""
    chosen = [o for o in _book(stream).orders.values() if not status_ or o.status == status_]
    print_orders(chosen[-last:], f"{len(chosen):,} orders, last {min(last, len(chosen))}")


def _operator(
    stream: str,
    command: str,
    reason: str,
    account: str | None,
    actor: str | None,
    limits: dict | None = None,
) -> None:
    # deferred: sklearn and scipy (~2 s measured) would load on every qtis command
    from trading_runtime.operator import send_command

    def waiting(seq: int) -> None:
        console.print(f"command {seq} journaled; waiting for the running engine to apply it ...")

    url = ready_url()
    try:
        effects = send_command(url, stream, command, reason, account, actor, limits, waiting)
    except LookupError as exc:
        raise fail(f"{exc} (see `qtis trade runs`)") from exc
    except (ValueError, TimeoutError) as exc:
        raise fail(str(exc)) from exc
    error = print_effects(effects)
    if error:
        raise fail(error)


def halt(
    stream: Stream = "paper", reason: Reason = "", account: Account = None, actor: Actor = None
) -> None:
    """Kill switch: cancel every open order and stop trading until `resume`."""
    _operator(stream, "halt", reason, account, actor)


def resume(
    stream: Stream = "paper", reason: Reason = "", account: Account = None, actor: Actor = None
) -> None:
    """Trade again after a halt (the drawdown peak restarts from today's equity)."""
    _operator(stream, "resume", reason, account, actor)


def limits(
    set_: Annotated[list[str], typer.Option("--set", help="NAME=VALUE")],
    stream: Stream = "paper",
    reason: Reason = "",
    account: Account = None,
    actor: Actor = None,
) -> None:
    """Change risk limits of a running (or stopped) stream."""
    try:
        limits = parse_limits(set_)
    except OptionError as exc:
        raise fail(str(exc)) from exc
    _operator(stream, "limits", reason, account, actor, limits)


def replay(stream: Stream = "paper") -> None:
    """Rebuild the state from the whole journal and check it: against the latest snapshot plus
    the events after it, and against the journal's own invariants."""
    journal = Journal(ready_url(), stream)
    try:
        if not journal.exists():
            raise fail(f"no stream {stream!r} (see `qtis trade runs`)")
        found = verify(journal)
    finally:
        journal.close()
    for line in found.checks:
        console.print(f"[green]ok[/] {line}")
    for line in found.problems:
        err.print(f"[red]mismatch[/] {line}")
    if found.problems:
        raise typer.Exit(1)


def _write_trail(trail: list[OrderAudit], format_: str, out: TextIO) -> None:
    if format_ == "json":
        json.dump([o.to_json() for o in trail], out, indent=1, default=str)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(o.to_row() for o in trail)


def audit(
    stream: Stream = "paper",
    format_: Annotated[Literal["csv", "json"], typer.Option("--format")] = "csv",
    output: Annotated[Path | None, typer.Option(help="file; default standard output")] = None,
) -> None:
    """Every order with its decision inputs (signal, forecast, target), model lineage (name,
    version, artifact sha256), risk checks and fills, from the journal once its hash chain
    checks out."""
    journal = Journal(ready_url(), stream)
    try:
        if not journal.exists():
            raise fail(f"no stream {stream!r} (see `qtis trade runs`)")
        trail = audit_trail(journal)
    except BrokenJournal as exc:
        raise fail(str(exc), code=1) from exc
    finally:
        journal.close()
    if output is None:
        _write_trail(trail, format_, sys.stdout)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", newline="") as out:
            _write_trail(trail, format_, out)
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from exc
    err.print(f"wrote {output} ({len(trail):,} orders)", highlight=False, soft_wrap=True)
