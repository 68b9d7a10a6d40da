"""`qtis features`: the feature build's progress bars and report, and the feature list."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from transforms import store
from transforms.build import FeatureBuild
from transforms.spec import INPUT_COLUMNS, FeatureSpec
from warehouse.quality import MissingInputs


class FeatureProgress:
    """A progress bar for the GARCH fits, then one for the dbt nodes (gone when done): a
    ``transforms.build.BuildProgress``."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=True,
        )
        self.garch = self.nodes = None

    def __enter__(self) -> FeatureProgress:
        self.progress.__enter__()
        self.garch = self.progress.add_task("GARCH(1,1) fits", total=None, current="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.__exit__(kind, exc, tb)

    def rewritten(self, symbols: list[str]) -> None:
        self.console.print(
            f"[yellow]history changed[/] for {len(symbols)} symbol(s) "
            f"({', '.join(symbols[:5])}{' ...' if len(symbols) > 5 else ''}): "
            "running a full refresh"
        )

    def garch_symbol(self, message: str) -> None:
        self.progress.update(self.garch, advance=1, current=message)

    def garch_done(self, symbols: int) -> None:
        self.progress.update(self.garch, total=symbols, completed=symbols)

    def dbt_started(self, nodes: int | None) -> None:
        self.nodes = self.progress.add_task("dbt build", total=nodes, current="")

    def dbt_node(self, name: str, status: str) -> None:
        if status == "started":
            self.progress.update(self.nodes, current=name)
        else:
            self.progress.update(self.nodes, advance=1)


def print_build(console: Console, url: str, report: FeatureBuild) -> None:
    g = report.garch
    console.print(
        f"[bold]GARCH[/]: {len(g.symbols)} symbols, {g.fits} fits, {g.rows_written:,} rows "
        f"written, {len(g.skipped_symbols)} skipped (too short), {g.failed_fits} failed fits, "
        f"{g.seconds:.1f}s"
    )
    dbt = report.dbt
    table = Table("model", "status", "rows", "seconds", title="dbt build")
    for node in dbt.nodes:
        if node.resource_type in ("model", "seed"):
            rows = f"{node.rows:,}" if node.rows is not None else ""
            table.add_row(node.name, _status(node.status), rows, f"{node.seconds:.2f}")
    console.print(table)
    tests = [n for n in dbt.nodes if n.resource_type == "test"]
    passed = sum(n.status == "pass" for n in tests)
    console.print(
        f"[bold]dbt tests[/]: {passed}/{len(tests)} passed"
        + (
            ""
            if passed == len(tests)
            else " - failing: "
            + ", ".join(f"{n.name} ({n.message})" for n in tests if n.status != "pass")
        )
    )
    for node in dbt.failures():
        if node.resource_type != "test":
            console.print(f"[red]{node.name}[/]: {node.message}")

    s = store.summary(url)
    kind = "full refresh" if dbt.full_refresh else "incremental"
    console.print(
        f"[bold]Feature store[/] ({kind}, {dbt.seconds:.1f}s): {s.features} features x "
        f"{s.rows.get('bar_features', 0):,} rows in features.bar_features ({s.symbols} symbols"
        + (f", {s.first_ts:%Y-%m-%d} to {s.last_ts:%Y-%m-%d}" if s.first_ts else "")
        + f"); {s.labels} label columns x {s.rows.get('labels', 0):,} rows in features.labels; "
        f"features.training_set {s.rows.get('training_set', 0):,} rows"
    )


def _status(status: str) -> str:
    colour = {"success": "green", "pass": "green", "skipped": "yellow"}.get(status, "red")
    return f"[{colour}]{status}[/]"


def print_feature_list(
    console: Console, spec: FeatureSpec, gaps: list[MissingInputs] | None = None
) -> None:
    """Every feature column with its kind, stage, parameters, bar inputs and warm-up; then the
    stored symbols that lack inputs (``gaps``) and which features are null for them."""
    inputs = spec.column_inputs()
    table = Table(
        "column", "kind", "stage", "parameters", "inputs", "warm-up bars", title="feature spec"
    )
    for f in spec.features:
        params = ", ".join(f"{k}={v}" for k, v in f.params.items())
        for column, warmup in zip(f.outputs, f.warmups, strict=True):
            table.add_row(column, f.kind, f.stage, params, inputs[column], str(warmup))
    for column in spec.columns("calendar"):
        table.add_row(column, "calendar", "calendar", "", "", "0")
    g = spec.garch
    table.add_row(
        g.name,
        "garch",
        "python",
        f"window={g.window}, refit_every={g.refit_every}",
        inputs[g.name],
        str(g.min_obs),
    )
    console.print(table)
    console.print(
        f"{len(spec.columns())} features; inputs: o/h/l/c/v = open/high/low/close/volume; "
        f"labels: {', '.join(spec.label_columns())} (definitions: docs/features.md)"
    )
    if gaps:
        print_missing_inputs(console, spec, gaps)


def print_missing_inputs(console: Console, spec: FeatureSpec, gaps: list[MissingInputs]) -> None:
    """The stored symbols whose bars lack inputs, and the features null for them."""
    letter = {column: key for key, column in INPUT_COLUMNS.items()}
    table = Table("symbol", "bars", "lacks", "null features", title="symbols without some inputs")
    for gap in gaps:
        lacks = ", ".join(
            letter[c] if n == gap.bars else f"{letter[c]} ({n:,} bars)"
            for c, n in gap.missing.items()
        )
        null = spec.columns_needing("".join(letter[c] for c in gap.missing))
        table.add_row(gap.symbol, f"{gap.bars:,}", lacks, f"{len(null)}: {', '.join(null)}")
    console.print(table)
