"""The model families QTIS trains, in one place: what each reads (the last bar's features or a
window of bars) and its registered name. Code that differs by family asks this module (or the
family's estimator) instead of comparing names. Light on purpose (no torch, no boosters): the CLI
reads it to parse and document its options."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    tree: bool  # a tree model on the current bar's features (else a network on windows)
    summary: str
    # a window network fine-tunes per symbol or sector (training.transfer); a cross-sectional one
    # does not: a group's rows are not its cross-sections
    fine_tunable: bool = False

    @property
    def registered(self) -> str:
        return f"qtis-{self.name}"


CATALOG: dict[str, Family] = {
    f.name: f
    for f in (
        Family("lstm", False, "stacked LSTM (the seed's network)", fine_tunable=True),
        Family("transformer", False, "encoder-only Transformer over the window", fine_tunable=True),
        Family("xgboost", True, "gradient-boosted trees (XGBoost), one multi-output model"),
        Family("lightgbm", True, "gradient-boosted trees (LightGBM), one booster per horizon"),
        Family(
            "bilstm_attention",
            False,
            "bidirectional LSTM pooled by temporal attention",
            fine_tunable=True,
        ),
        Family(
            "cnn",
            False,
            "dilated causal 1D convolutions (a temporal convolutional network)",
            fine_tunable=True,
        ),
        Family("cross_asset", False, "attention across the symbols of a cross-section at each bar"),
    )
}
FAMILIES: tuple[str, ...] = tuple(CATALOG)
# the stacked ensemble's members and the demo's pipeline: the three seed families (the others train
# by name, `qtis train --model all` trains every family)
SEED_FAMILIES: tuple[str, ...] = ("lstm", "transformer", "xgboost")
MODEL_HELP = f"{', '.join(FAMILIES)}, a comma-separated list, or all"
# transfer learning: pre-trained on the whole universe, fine-tuned per symbol or per sector
GROUPINGS: tuple[str, ...] = ("symbol", "sector")


def fine_tuned_name(family: str, group: str) -> str:
    """The fine-tuned variant of ``family`` in evaluations and registrations: ``lstm+ft_symbol``."""
    return f"{family}+ft_{group}"


# each fine-tuned variant -> (its family, its grouping)
FINE_TUNED: dict[str, tuple[str, str]] = {
    fine_tuned_name(f.name, g): (f.name, g)
    for f in CATALOG.values()
    if f.fine_tunable
    for g in GROUPINGS
}
# registered model names: qtis-lstm, ..., and qtis-lstm-ft-symbol for a fine-tuned variant
REGISTERED: dict[str, str] = {f.name: f.registered for f in CATALOG.values()} | {
    name: f"qtis-{family}-ft-{group}" for name, (family, group) in FINE_TUNED.items()
}


def lookup(name: str) -> Family:
    """The family called ``name``; an unknown name is refused with the list."""
    try:
        return CATALOG[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(FAMILIES)}") from None


def is_tree(name: str) -> bool:
    """A tree family (a fine-tuned variant is its network's: never)."""
    return lookup(FINE_TUNED[name][0] if name in FINE_TUNED else name).tree


def study_index(name: str) -> int:
    """A stable number per family and fine-tuned variant (for seeding their searches apart)."""
    return (
        FAMILIES.index(name) if name in FAMILIES else len(FAMILIES) + sorted(FINE_TUNED).index(name)
    )


def parse_families(model: str) -> tuple[str, ...]:
    """``"all"`` or a comma-separated list of families -> the families (unknown ones refused)."""
    if model == "all":
        return FAMILIES
    return tuple(lookup(m.strip()).name for m in model.split(","))


def fine_tuned_variants(families: tuple[str, ...], grouping: str) -> tuple[str, ...]:
    """The fine-tuned variants of the window networks among ``families``; refused, with why,
    for an unknown grouping or when there is none."""
    if grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {grouping!r}; choose from {', '.join(GROUPINGS)}")
    found = tuple(fine_tuned_name(f, grouping) for f in families if lookup(f).fine_tunable)
    if not found:
        tunable = ", ".join(f.name for f in CATALOG.values() if f.fine_tunable)
        raise ValueError(
            f"none of {', '.join(families)} is fine-tuned: tree models and cross_asset are not "
            f"(choose among {tunable})"
        )
    return found


def parse_training(model: str, fine_tune: str | None) -> tuple[tuple[str, ...], str | None]:
    """What `qtis train --model` names -> (families, grouping): a fine-tuned variant
    (``lstm+ft_symbol``) trains its family with that grouping, as ``--fine-tune symbol`` does;
    two groupings in one run are refused."""
    names = [m.strip() for m in model.split(",")] if model != "all" else list(FAMILIES)
    groupings = {FINE_TUNED[m][1] for m in names if m in FINE_TUNED} | (
        {fine_tune} if fine_tune else set()
    )
    if len(groupings) > 1:
        raise ValueError(f"one grouping per run: {' and '.join(sorted(groupings))} were asked for")
    bases = [FINE_TUNED[m][0] if m in FINE_TUNED else lookup(m).name for m in names]
    return tuple(dict.fromkeys(bases)), (groupings.pop() if groupings else None)
