"""Compiled loops of a parameter sweep (``trading_runtime.sweep``): the moving averages of every
window a grid uses, and each cell's account simulated bar by bar with the engine's rules for a
long-only SMA cross (entries and exits) or a long-only model strategy (a threshold on the
champion's forecasts, rebalanced) trading market orders - the simulated venue's fills (next
open, half spread plus fixed slippage, commission, a volume participation cap), lot rounding,
the order caps of ``sizing.order_size``, the pre-trade checks of ``risk.RiskEngine`` that apply
to market orders (order rate, quantity and notional, concentration, sector, gross and net
exposure, cash or margin) and the drawdown states. Cells run in parallel; each is one sequential
pass, because sizing by equity and the checks make every bar depend on the fills before it.

Means come from running sums; where a cell's fast and slow means are within ``TIE`` of each
other they are summed again exactly as the engine's ``SmaCross`` sums them (numpy's pairwise
order, newest close first), so a near tie is decided as the engine decides it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from transforms.online.rolling import pairwise_sum

TIE = 1e-8  # relative gap of two means below which both are summed again exactly
SLOTS = 8  # working orders one symbol may have at once (more: netted, the cell approximate)

# st: one cell's scalars, shared by the helpers
CASH, EQUITY, PEAK, STATE, FEES, TRADED, FILLS, ORDERS, DENIED, OVERLAP, NREC, NHELD = range(12)
ACTIVE, REDUCING, HALTED = 0.0, 1.0, 2.0
# costs: the CostModel's fields; NaN participation: no volume cap
COMMISSION_BPS, PER_SHARE, COMMISSION_MIN, HALF_SPREAD, SLIPPAGE_BPS, PARTICIPATION = range(6)
# limits: the RiskLimits fields a market order meets; NaN: off
(ORDER_NOTIONAL, ORDER_QUANTITY, POSITION_NOTIONAL, POSITION_QUANTITY, SYMBOL_WEIGHT,
 SECTOR_WEIGHT, GROSS, NET, ALLOW_SHORT, CASH_ACCOUNT, MARGIN, FEE_RESERVE, ORDERS_PER_BAR,
 REDUCING_DD, HALT_DD) = range(15)  # fmt: skip


@njit(cache=True)
def compress(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each symbol's closes without its missing bars (``comp``, symbols x bars) and how many
    it has seen by each bar (``seen``, bars x symbols): a symbol without a bar does not move."""
    t_n, s_n = close.shape
    comp = np.full((s_n, t_n), np.nan)
    seen = np.zeros((t_n, s_n), dtype=np.int64)
    for s in range(s_n):
        k = 0
        for t in range(t_n):
            if not math.isnan(close[t, s]):
                comp[s, k] = close[t, s]
                k += 1
            seen[t, s] = k
    return comp, seen


@njit(parallel=True, cache=True)
def rolling_means(comp: np.ndarray, seen: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """(windows, bars, symbols): the mean of the last ``w`` closes seen, NaN before ``w``."""
    t_n, s_n = seen.shape
    out = np.full((len(windows), t_n, s_n), np.nan)
    for s in prange(s_n):
        total = np.zeros(t_n + 1)
        for k in range(t_n):
            total[k + 1] = total[k] + (0.0 if math.isnan(comp[s, k]) else comp[s, k])
        for wi in range(len(windows)):
            w = windows[wi]
            for t in range(t_n):
                k = seen[t, s]
                if k >= w:
                    out[wi, t, s] = (total[k] - total[k - w]) / w
    return out


@njit(cache=True)
def exact_mean(comp: np.ndarray, s: int, k: int, w: int) -> float:
    """The engine's mean of symbol ``s``'s last ``w`` of ``k`` closes seen."""
    window = np.empty(w)
    for j in range(w):
        window[j] = comp[s, k - 1 - j]
    return pairwise_sum(window, 0, w) / w


@njit(cache=True)
def long_signal(means, comp, seen, fi, si, fast, slow, t, s) -> float:
    """1 while the fast mean is above the slow one (after ``slow`` closes seen), else 0."""
    k = seen[t, s]
    if k < slow:
        return 0.0
    f, m = means[fi, t, s], means[si, t, s]
    if abs(f - m) <= TIE * abs(m):
        f, m = exact_mean(comp, s, k, fast), exact_mean(comp, s, k, slow)
    return 1.0 if f > m else 0.0


@njit(cache=True)
def model_signal(forecast, strength, threshold, t, s, short) -> float:
    """``ModelSignals``' strength, none where the forecast is below ``threshold`` (a missing
    forecast has strength 0 already); not below 0 unless ``short``, as ``Engine._decide``."""
    if abs(forecast[t, s]) < threshold:
        return 0.0
    return strength[t, s] if short else max(strength[t, s], 0.0)


@njit(cache=True)
def lots_of(quantity: float, lot: float) -> float:
    """``instruments.round_quantity``: whole lots towards zero."""
    n = math.floor(abs(quantity) / lot + 1e-9)
    return math.copysign(n * lot, quantity) if n else 0.0


@njit(cache=True)
def commission(costs, quantity, price, multiplier) -> float:
    fee = costs[COMMISSION_BPS] * 1e-4 * quantity * price * multiplier
    fee += costs[PER_SHARE] * quantity
    minimum = costs[COMMISSION_MIN]
    return max(fee, minimum) if fee > 0 or minimum else 0.0


@njit(cache=True)
def fill_bar(t, open_, volume, costs, lot, mult, queue, held, order, st, rec) -> None:
    """Market orders due by bar ``t`` fill at its open plus costs, oldest first, one symbol's
    fills together taking at most the participation share of its volume."""
    work, slots, due, count = queue
    for s in range(open_.shape[1]):
        if count[s] == 0 or math.isnan(open_[t, s]):
            continue
        taken, j = 0.0, 0
        while j < count[s]:
            if due[s, j] > t:
                break
            quantity = abs(slots[s, j])
            if not math.isnan(costs[PARTICIPATION]):
                cap = costs[PARTICIPATION] * volume[t, s] - taken
                quantity = min(quantity, lots_of(max(cap, 0.0), lot[s]))
            if quantity > 0:
                taken += quantity
                fill(t, s, 1.0 if slots[s, j] > 0 else -1.0, quantity, open_[t, s], costs,
                     mult[s], held, order, st, rec)  # fmt: skip
                step = quantity if slots[s, j] > 0 else -quantity
                slots[s, j] -= step
                work[s] -= step
            if abs(slots[s, j]) <= 1e-9:  # filled: the later orders move up
                slots[s, j : count[s] - 1] = slots[s, j + 1 : count[s]].copy()
                due[s, j : count[s] - 1] = due[s, j + 1 : count[s]].copy()
                count[s] -= 1
                if count[s] == 0:
                    work[s] = 0.0
            else:
                j += 1


@njit(cache=True)
def fill(t, s, sign, quantity, ref, costs, m, held, order, st, rec) -> None:
    """``SimulatedBroker._fill`` of a market order at reference ``ref``, applied to the book."""
    cost = costs[HALF_SPREAD] * 1e-4 * ref
    cost += costs[SLIPPAGE_BPS] * 1e-4 * ref
    price = ref + sign * cost
    fee = commission(costs, quantity, price, m)
    if held[s] == 0.0 and not _listed_in(order, st, s):
        order[int(st[NHELD])] = s
        st[NHELD] += 1
    held[s] += sign * quantity
    st[CASH] -= sign * quantity * price * m + fee
    st[FEES] += fee
    st[TRADED] += quantity * price
    st[FILLS] += 1
    n = int(st[NREC])
    if n < rec.shape[0]:
        rec[n, 0], rec[n, 1], rec[n, 2] = t, s, sign * quantity
        rec[n, 3], rec[n, 4] = price, fee
        st[NREC] += 1


@njit(cache=True)
def _listed_in(order, st, s) -> bool:
    return (order[: int(st[NHELD])] == s).any()


@njit(cache=True)
def mark_bar(t, close, mult, held, marks, order, st) -> None:
    """Marks at the close and the account's equity, summed in the book's order of positions."""
    for s in range(close.shape[1]):
        if not math.isnan(close[t, s]):
            marks[s] = close[t, s]
    value = 0.0
    for k in range(int(st[NHELD])):
        s = order[k]
        value += held[s] * marks[s] * mult[s]
    st[EQUITY] = st[CASH] + value
    st[PEAK] = max(st[PEAK], st[EQUITY])


@njit(cache=True)
def risk_state(limits, held, queue, st) -> None:
    """The engine's drawdown states: reducing at one drawdown, halted (orders cancelled) at a
    deeper one; reducing lifts back under its level, or once flat (the peak restarts)."""
    if st[STATE] == HALTED:
        return
    work, count = queue[0], queue[3]
    dd = 1.0 - st[EQUITY] / st[PEAK] if st[PEAK] > 0 else 0.0
    halt, reduce = limits[HALT_DD], limits[REDUCING_DD]
    if not math.isnan(halt) and dd >= halt:
        st[STATE] = HALTED
        work[:] = 0.0
        count[:] = 0
    elif st[STATE] == ACTIVE and not math.isnan(reduce) and dd >= reduce:
        st[STATE] = REDUCING
    elif st[STATE] == REDUCING:
        if math.isnan(reduce) or dd < reduce:
            st[STATE] = ACTIVE
        elif not (count != 0).any() and not (held != 0.0).any():
            st[STATE] = ACTIVE
            st[PEAK] = st[EQUITY]


@njit(cache=True, error_model="numpy")
def target_of(kind, size, cap, n, bars_per_year, strength, equity, price, vol) -> float:
    """``sizing``'s target quantity: 0 fixed (``size`` units), 1 equal weight (``size`` gross
    of equity), 2 volatility target (``size`` annual vol shared by the ``n`` symbols, at most
    ``cap`` of equity each; ``vol`` the symbol's daily volatility)."""
    if kind == 0:
        return math.copysign(size, strength) if strength != 0 else 0.0
    if kind == 1:
        target = strength * size / n * equity / price
    else:
        budget = size / math.sqrt(bars_per_year) / math.sqrt(n)
        weight = budget / vol
        weight = math.nan if math.isnan(weight) else min(weight, cap)
        target = weight * strength * equity / price
    return 0.0 if math.isnan(target) else target


@njit(cache=True)
def exposure(held, queue, marks, mult, sector, vals, sectors) -> tuple[float, float, float]:
    """``risk.Exposure.build``: each symbol's value once its working orders fill; gross, net
    and the cash working buys commit."""
    work, slots, _, count = queue
    gross = net = committed = 0.0
    sectors[:] = 0.0
    for s in range(len(held)):
        q = held[s] + work[s]
        vals[s] = q * marks[s] * mult[s] if q != 0.0 else 0.0
        gross += abs(vals[s])
        net += vals[s]
        if sector[s] >= 0:
            sectors[sector[s]] += abs(vals[s])
        for j in range(count[s]):
            if slots[s, j] > 0:
                committed += slots[s, j] * marks[s] * mult[s]
    return gross, net, committed


@njit(cache=True)
def _shrinks(before: float, delta: float) -> bool:
    after = before + delta
    return abs(after) <= abs(before) + 1e-9 and after * before >= 0


@njit(cache=True)
def denied(limits, s, d, q, price, m, held, work, vals, sectors, sector, exp, st, sent) -> bool:
    """``risk.RiskEngine._check`` for a market order of ``q`` (signed ``d``) at ``price``;
    ``exp``: gross, net, committed of the bar's exposure."""
    before = held[s] + work[s]
    after = before + d
    if not math.isnan(limits[ORDERS_PER_BAR]) and sent >= limits[ORDERS_PER_BAR]:
        return True
    if _shrinks(held[s], d) and _shrinks(before, d):
        return False
    if st[STATE] == REDUCING:
        return True
    for value, limit in ((q, limits[ORDER_QUANTITY]), (q * price * m, limits[ORDER_NOTIONAL]),
                         (abs(after), limits[POSITION_QUANTITY]),
                         (abs(after) * price * m, limits[POSITION_NOTIONAL])):  # fmt: skip
        if not math.isnan(limit) and value > limit + 1e-9:
            return True
    if after < 0 and not limits[ALLOW_SHORT]:
        return True
    equity = st[EQUITY]
    if equity <= 0:
        return True
    new, old = after * price * m, vals[s]
    if not math.isnan(limits[SYMBOL_WEIGHT]) and abs(new) / equity > limits[SYMBOL_WEIGHT] + 1e-9:
        return True
    cap, g = limits[SECTOR_WEIGHT], sector[s]
    if g >= 0 and not math.isnan(cap) and (sectors[g] - abs(old) + abs(new)) / equity > cap + 1e-9:
        return True
    if (
        not math.isnan(limits[GROSS])
        and (exp[0] - abs(old) + abs(new)) / equity > limits[GROSS] + 1e-9
    ):
        return True
    if not math.isnan(limits[NET]) and abs(exp[1] - old + new) / equity > limits[NET] + 1e-9:
        return True
    reserve = 1 + limits[FEE_RESERVE] * 1e-4
    if limits[CASH_ACCOUNT]:
        free = st[CASH] - exp[2] * reserve
        return d > 0 and q * price * m * reserve > free + 1e-9
    needed = (exp[0] - abs(old) + abs(after * price * m)) * limits[MARGIN] * reserve
    return needed > equity + 1e-9


@njit(cache=True)
def approve(s, d, q, price, m, held, work, vals, sectors, sector, exp) -> None:
    """``risk.Exposure.add``: the approved order counted in the bar's exposure."""
    new = (held[s] + work[s] + d) * price * m
    old = vals[s]
    vals[s] = new
    exp[0] += abs(new) - abs(old)
    exp[1] += new - old
    if sector[s] >= 0:
        sectors[sector[s]] += abs(new) - abs(old)
    if d > 0:
        exp[2] += q * price * m


@njit(cache=True)
def decide(t, close, vol, sig, cell, market, limits, held, queue, marks, st, scratch) -> None:
    """``Engine._decide`` and ``_orders``: the orders of bar ``t`` towards the sizer's targets,
    capped, checked and counted; the SMA cross (signal 0) trades entries and exits only, the
    model (1) rebalances once the target moved by ``min_trade`` of itself."""
    means, comp, seen, forecast, model_strength = sig
    signal, fi, si, fast, slow, kind, size, cap, threshold = cell
    lot, mult, sector, latency, bars_per_year, _, min_trade = market
    sectors, vals, exp = scratch
    work, slots, due, count = queue
    n = close.shape[1]
    sent, built = 0, False
    for s in range(n):
        price = close[t, s]
        if math.isnan(price):
            continue
        if signal == 0:
            strength = long_signal(means, comp, seen, fi, si, fast, slow, t, s)
        else:
            short = limits[ALLOW_SHORT] > 0
            strength = model_signal(forecast, model_strength, threshold, t, s, short)
        raw = target_of(kind, size, cap, n, bars_per_year, strength, st[EQUITY], price, vol[t, s])
        target = math.copysign(math.floor(abs(raw) / lot[s] + 1e-9) * lot[s], raw)
        current = held[s] + work[s]
        delta = target - current
        if signal == 0 and np.sign(target) == np.sign(current):
            continue
        if signal == 1 and not (target == 0.0 or abs(delta) >= min_trade * abs(target)):
            continue
        if st[STATE] == REDUCING and not (abs(target) < abs(current) and target * current >= 0):
            continue
        if abs(delta) < lot[s]:
            continue
        q = abs(delta)
        if not math.isnan(limits[ORDER_QUANTITY]):
            q = min(q, limits[ORDER_QUANTITY])
        if not math.isnan(limits[ORDER_NOTIONAL]):
            q = min(q, limits[ORDER_NOTIONAL] / (price * mult[s]))
        q = lots_of(q, lot[s])
        if q <= 0:
            continue
        d = q if delta > 0 else -q
        if not built:
            exp[0], exp[1], exp[2] = exposure(held, queue, marks, mult, sector, vals, sectors)
            built = True
        st[ORDERS] += 1
        args = (held, work, vals, sectors, sector, exp)
        if denied(limits, s, d, q, price, mult[s], *args, st, sent):
            st[DENIED] += 1
            continue
        approve(s, d, q, price, mult[s], *args)
        sent += 1
        work[s] += d
        j = count[s]
        if j == slots.shape[1]:  # more orders in flight than slots: net into the last
            st[OVERLAP] += 1
            j -= 1
            d += slots[s, j]
        else:
            count[s] += 1
        slots[s, j], due[s, j] = d, t + 1 + latency


@njit(cache=True)
def run_cell(bars, first, sig, cell, market, costs, limits, capital, equity, st, rec) -> None:
    """One cell from the first traded bar to the end: fills, marks, drawdown state, orders."""
    open_, close, volume, vol = bars
    lot, mult, n_sectors = market[0], market[1], market[5]
    t_n, n = close.shape
    held, marks = np.zeros(n), np.full(n, np.nan)
    scratch = (np.zeros(n_sectors), np.zeros(n), np.zeros(3))  # sectors, values, exposure
    # working orders per symbol, oldest first: net remaining, each one's, due bar, how many
    queue = (np.zeros(n), np.zeros((n, SLOTS)), np.zeros((n, SLOTS), np.int64),
             np.zeros(n, np.int64))  # fmt: skip
    order = np.zeros(n, dtype=np.int64)  # symbols in the order of their first fill
    st[:] = 0.0
    st[CASH] = st[EQUITY] = st[PEAK] = capital
    for t in range(first, t_n):
        fill_bar(t, open_, volume, costs, lot, mult, queue, held, order, st, rec)
        mark_bar(t, close, mult, held, marks, order, st)
        equity[t - first] = st[EQUITY]
        risk_state(limits, held, queue, st)
        if st[STATE] != HALTED:
            decide(t, close, vol, sig, cell, market, limits, held, queue, marks, st, scratch)


@njit(parallel=True, cache=True)
def run_cells(bars, first, sig, cells, sizes, market, costs, limits, capital, equity, stats):
    """Every cell (rows of ``cells``: signal kind, fast index, slow index, fast, slow, sizing
    kind; of ``sizes``: size, cap, threshold) into its row of ``equity`` and ``stats``; cells in
    parallel."""
    no_record = np.zeros((0, 5))
    for c in prange(cells.shape[0]):
        cell = (cells[c, 0], cells[c, 1], cells[c, 2], cells[c, 3], cells[c, 4], cells[c, 5],
                sizes[c, 0], sizes[c, 1], sizes[c, 2])  # fmt: skip
        run_cell(bars, first, sig, cell, market, costs, limits, capital, equity[c], stats[c],
                 no_record)  # fmt: skip
