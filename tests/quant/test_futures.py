"""Roll schedules, back-adjusted continuous series and the synthetic chain, on hand-made chains
whose every number can be checked on paper."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant.futures import ContractChain, FuturesContract, RollRule, continuous, roll_schedule
from quant.futures_chain import synthetic_chain, third_friday

NAN = np.nan
# Mon 1 Jan 2024 .. Fri 12 Jan 2024: ten business days, positions 0..9
DATES = pd.bdate_range("2024-01-01", periods=10)
A = FuturesContract("X", "XA", date(2024, 1, 4), 50.0, 0.25, 12_000.0, 11_000.0)  # Thursday
B = FuturesContract("X", "XB", date(2024, 1, 10), 50.0, 0.25, 12_000.0, 11_000.0)  # Wednesday
C = FuturesContract("X", "XC", date(2024, 3, 15), 50.0, 0.25, 12_000.0, 11_000.0)
CLOSE = pd.DataFrame(
    {
        "XA": [100, 101, 102, 103, NAN, NAN, NAN, NAN, NAN, NAN],
        "XB": [105, 106, 108, 107, 109, 110, 111, 112, NAN, NAN],
        "XC": [120, 121, 122, 123, 124, 125, 127, 126, 128, 130],
    },
    index=DATES,
    dtype=float,
)
VOLUME = pd.DataFrame(
    {
        "XA": [1000, 900, 500, 100, NAN, NAN, NAN, NAN, NAN, NAN],
        "XB": [100, 950, 800, 900, 900, 800, 700, 500, NAN, NAN],
        "XC": [10, 10, 20, 30, 40, 50, 60, 600, 900, 900],  # passes XB only after its fallback
    },
    index=DATES,
    dtype=float,
)
OPEN_INTEREST = pd.DataFrame(
    {
        "XA": [5000, 4000, 3000, 1000, NAN, NAN, NAN, NAN, NAN, NAN],
        "XB": [1000, 2000, 3500, 4000, 4000, 3000, 2000, 1000, NAN, NAN],
        "XC": [100, 200, 300, 400, 3500, 3100, 3000, 3000, 3000, 3000],
    },
    index=DATES,
    dtype=float,
)
CHAIN = ContractChain((A, B, C), CLOSE, VOLUME, OPEN_INTEREST)


def rolls_of(chain, rule):
    return [(r.from_symbol, r.to_symbol, str(r.date.date()), r.reason)
            for r in roll_schedule(chain, rule)]  # fmt: skip


def test_expiry_rule_rolls_n_business_days_before_each_expiry():
    # one business day before Thu 4 Jan is Wed 3 Jan; before Wed 10 Jan, Tue 9 Jan
    assert rolls_of(CHAIN, RollRule("expiry", 1)) == [
        ("XA", "XB", "2024-01-03", "expiry"),
        ("XB", "XC", "2024-01-09", "expiry"),
    ]
    # two days: Tue 2 Jan and Mon 8 Jan; zero days: on the expiry bars themselves
    assert [r[2] for r in rolls_of(CHAIN, RollRule("expiry", 2))] == ["2024-01-02", "2024-01-08"]
    assert [r[2] for r in rolls_of(CHAIN, RollRule("expiry", 0))] == ["2024-01-04", "2024-01-10"]
    # a holiday on Mon 8 Jan: two trading days before 10 Jan is then Fri 5 Jan
    rule = RollRule("expiry", 2, holidays=(date(2024, 1, 8),))
    assert [r[2] for r in rolls_of(CHAIN, rule)] == ["2024-01-02", "2024-01-05"]


def test_activity_rules_roll_on_the_first_bar_the_next_leads_never_after_the_fallback():
    # volume: XB 950 > XA 900 on 2 Jan; XC overtakes XB only on 10 Jan, after the 1-day
    # fallback of 9 Jan, so that roll is the fallback's
    assert rolls_of(CHAIN, RollRule("volume", 1)) == [
        ("XA", "XB", "2024-01-02", "volume"),
        ("XB", "XC", "2024-01-09", "expiry"),
    ]
    # open interest, fallback on the expiry bars (4 and 10 Jan): XB 3,500 > XA 3,000 on 3 Jan;
    # XC 3,500 > XB 4,000 fails on 5 Jan, XC 3,100 > XB 3,000 holds on 8 Jan
    assert rolls_of(CHAIN, RollRule("open_interest", 0)) == [
        ("XA", "XB", "2024-01-03", "open_interest"),
        ("XB", "XC", "2024-01-08", "open_interest"),
    ]
    # with a 3-day fallback the XA roll is due on 1 Jan, bar 0: the chain starts in XB
    with_fallback = rolls_of(CHAIN, RollRule("volume", 3))
    assert with_fallback == [("XB", "XC", "2024-01-05", "expiry")]


def test_difference_adjustment_by_hand():
    series = continuous(CHAIN, RollRule("expiry", 1), "difference")
    # gaps: XB - XA on 3 Jan = 108 - 102 = 6; XC - XB on 9 Jan = 127 - 111 = 16
    expected = [100 + 22, 101 + 22, 108 + 16, 107 + 16, 109 + 16, 110 + 16, 127, 126, 128, 130]
    np.testing.assert_allclose(series.prices.to_numpy(), expected)
    assert series.held.tolist() == ["XA"] * 2 + ["XB"] * 4 + ["XC"] * 4
    np.testing.assert_allclose(series.adjustment.to_numpy(), [22] * 2 + [16] * 4 + [0] * 4)
    # the last contract's prices are unchanged; each change is the held contract's change
    pd.testing.assert_series_equal(series.prices[6:], CLOSE["XC"][6:], check_names=False)
    changes = series.changes()
    assert changes.iloc[2] == CLOSE["XA"].iloc[2] - CLOSE["XA"].iloc[1] == 1  # roll bar: XA
    assert changes.iloc[6] == CLOSE["XB"].iloc[6] - CLOSE["XB"].iloc[5] == 1  # roll bar: XB
    assert changes.iloc[4] == CLOSE["XB"].iloc[4] - CLOSE["XB"].iloc[3] == 2


def test_ratio_adjustment_by_hand():
    series = continuous(CHAIN, RollRule("expiry", 1), "ratio")
    late, early = 127 / 111, 108 / 102 * 127 / 111
    expected = [100 * early, 101 * early, 108 * late, 107 * late, 109 * late, 110 * late,
                127, 126, 128, 130]  # fmt: skip
    np.testing.assert_allclose(series.prices.to_numpy(), expected, rtol=1e-12)
    assert series.prices.iloc[0] == pytest.approx(121.144674)  # 100 x 1.058824 x 1.144144
    returns = series.returns()
    held_returns = [CLOSE[s].iloc[t] / CLOSE[s].iloc[t - 1] - 1
                    for t, s in enumerate(series.held.shift(1).iloc[1:], start=1)]  # fmt: skip
    np.testing.assert_allclose(returns.iloc[1:].to_numpy(), held_returns, rtol=1e-12)
    assert returns.iloc[2] == pytest.approx(102 / 101 - 1)  # the roll bar earns XA's return
    assert returns.iloc[3] == pytest.approx(107 / 108 - 1)  # then XB's


def test_ratio_refuses_non_positive_prices_and_a_roll_without_prices():
    negative = CLOSE.copy()
    negative.loc[DATES[2], "XA"] = -1.0
    with pytest.raises(ValueError, match=r"positive prices.*difference"):
        continuous(ContractChain((A, B, C), negative), RollRule("expiry", 1), "ratio")
    assert continuous(ContractChain((A, B, C), negative), RollRule("expiry", 1),
                      "difference").prices.iloc[0] == 100 + 16 + 109  # fmt: skip
    gap = CLOSE.copy()
    gap.loc[DATES[6], "XC"] = NAN
    with pytest.raises(ValueError, match="XC has no close that bar"):
        roll_schedule(ContractChain((A, B, C), gap), RollRule("expiry", 1))


def scrambled(chain: ContractChain, cut: pd.Timestamp, seed: int) -> ContractChain:
    """``chain`` with every close, volume and open interest after ``cut`` scaled at random."""
    rng = np.random.default_rng(seed)
    later = chain.close.index > cut
    frames = []
    for frame in (chain.close, chain.volume, chain.open_interest):
        out = frame.copy()
        out.loc[later] *= rng.uniform(0.5, 2.0, size=out.loc[later].shape)
        frames.append(out)
    return ContractChain(chain.contracts, *frames)


@pytest.mark.parametrize("by", ["expiry", "volume", "open_interest"])
def test_rolls_and_returns_are_point_in_time(by):
    """Scrambling every bar after a roll's bar leaves that roll and every earlier one as they
    were (so no decision reads a later bar, not even the next one); scrambling after a cut
    changes neither the contract held up to it nor any return or price change up to it."""
    chain, rule = synthetic_chain(bars=300, seed=3), RollRule(by, 5)
    rolls = roll_schedule(chain, rule)
    assert len(rolls) == 4
    for k, roll in enumerate(rolls):
        other = roll_schedule(scrambled(chain, roll.date, seed=k), rule)
        assert other[: k + 1] == rolls[: k + 1], (by, roll)
    cut = 140
    other = scrambled(chain, chain.close.index[cut], seed=11)
    for method in ("ratio", "difference"):
        a, b = continuous(chain, rule, method), continuous(other, rule, method)
        assert a.held[: cut + 1].equals(b.held[: cut + 1])
        moves = (lambda s: s.returns()) if method == "ratio" else (lambda s: s.changes())
        np.testing.assert_allclose(moves(a)[1 : cut + 1], moves(b)[1 : cut + 1], rtol=1e-9)
        assert not np.allclose(moves(a)[cut + 1 :], moves(b)[cut + 1 :])  # later ones moved


def test_synthetic_chain_is_deterministic_and_rolls_near_expiry():
    one, two = synthetic_chain(seed=5), synthetic_chain(seed=5)
    for name in ("close", "volume", "open_interest"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name))
    assert not synthetic_chain(seed=6).close.equals(one.close)
    assert one.contracts[0].symbol == "ESH22" and one.contracts[0].expiry == date(2022, 3, 18)
    assert third_friday(2024, 3) == date(2024, 3, 15)
    assert {c.multiplier for c in one.contracts} == {50.0}
    prices = one.close.stack()
    assert np.allclose(prices / 0.25, np.round(prices / 0.25))  # on the tick
    # carry: the next contract trades above the front by about 4% a year of their spacing
    day = one.close.index[10]
    front, nxt = one.close.loc[day].dropna().iloc[:2]
    assert nxt / front - 1 == pytest.approx(0.04 * 91 / 365, abs=0.003)
    for roll in roll_schedule(one, RollRule("volume", 5)):
        left = np.busday_count(roll.date.date(), one.contract(roll.from_symbol).expiry)
        assert 5 <= left <= 12, (roll, left)


def test_contract_validation_names_the_field():
    with pytest.raises(ValueError, match="tick_size must be a positive number"):
        FuturesContract("ES", "ESH24", date(2024, 3, 15), 50.0, 0.0, 12_000.0, 11_000.0)
    with pytest.raises(ValueError, match="maintenance margin 13000 is above the initial"):
        FuturesContract("ES", "ESH24", date(2024, 3, 15), 50.0, 0.25, 12_000.0, 13_000.0)
    with pytest.raises(ValueError, match="strictly increasing expiry"):
        ContractChain((B, A), CLOSE)
    with pytest.raises(ValueError, match="needs the chain's volume frame"):
        roll_schedule(ContractChain((A, B, C), CLOSE), RollRule("volume"))
    assert A.margin(-3) == 36_000.0 and A.notional(2, 4000.0) == 400_000.0
