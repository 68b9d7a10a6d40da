{#
  Recursive indicators as Postgres aggregates, used as running window functions
  (`agg(...) over (partition by symbol order by ts rows unbounded preceding)`).

  Each aggregate's state is a float8[] whose first element is the indicator value (null during
  warm-up); the rest is what the recursion needs. The last argument `seed` is a stored state:
  when it is not null on the first row of a frame, the aggregate resumes from it (and skips that
  row's inputs, which the state already contains). Incremental runs pass the state stored on each
  symbol's last row, so they repeat exactly the arithmetic of a full refresh.
#}
{% macro create_feature_functions() %}
create schema if not exists features;

-- EMA (TA-Lib): SMA seed over the first n values after `skip` values, then (x - e) * k + e.
-- state: [value, count, sum]
create or replace function features.qtis_ema_step(
    s float8[], x float8, n integer, skip integer, seed float8[]
) returns float8[] language plpgsql immutable as $$
begin
    if s is null then
        if seed is not null then
            return seed;
        end if;
        s := array[null, 0, 0]::float8[];
    end if;
    if x is null then
        return s;
    end if;
    s[2] := s[2] + 1;
    if s[2] <= skip then
        return s;
    end if;
    if s[2] - skip <= n then
        s[3] := s[3] + x;
        if s[2] - skip = n then
            s[1] := s[3] / n;
        end if;
        return s;
    end if;
    s[1] := (x - s[1]) * (2.0::float8 / (n + 1)) + s[1];
    return s;
end $$;

create or replace aggregate features.qtis_ema(float8, integer, integer, float8[]) (
    sfunc = features.qtis_ema_step, stype = float8[]
);

-- Wilder RSI (TA-Lib): mean gain/loss over the first n changes, then (m * (n - 1) + x) / n.
-- state: [value, count, prev_close, avg_gain, avg_loss]
create or replace function features.qtis_rsi_step(
    s float8[], x float8, n integer, seed float8[]
) returns float8[] language plpgsql immutable as $$
declare
    d float8;
begin
    if s is null then
        if seed is not null then
            return seed;
        end if;
        return array[null, 1, x, 0, 0]::float8[];
    end if;
    d := x - s[3];
    s[3] := x;
    s[2] := s[2] + 1;
    if s[2] <= n + 1 then
        if d < 0 then s[5] := s[5] - d; else s[4] := s[4] + d; end if;
        if s[2] < n + 1 then
            return s;
        end if;
        s[4] := s[4] / n;
        s[5] := s[5] / n;
    else
        s[4] := s[4] * (n - 1);
        s[5] := s[5] * (n - 1);
        if d < 0 then s[5] := s[5] - d; else s[4] := s[4] + d; end if;
        s[4] := s[4] / n;
        s[5] := s[5] / n;
    end if;
    if abs(s[4] + s[5]) < 1e-14 then
        s[1] := 0;
    else
        s[1] := 100.0::float8 * (s[4] / (s[4] + s[5]));
    end if;
    return s;
end $$;

create or replace aggregate features.qtis_rsi(float8, integer, float8[]) (
    sfunc = features.qtis_rsi_step, stype = float8[]
);

-- Wilder ATR (TA-Lib): mean true range over bars 1..n, then (atr * (n - 1) + tr) / n.
-- state: [value, count, prev_close, sum_tr]
create or replace function features.qtis_atr_step(
    s float8[], h float8, l float8, c float8, n integer, seed float8[]
) returns float8[] language plpgsql immutable as $$
declare
    tr float8;
begin
    if s is null then
        if seed is not null then
            return seed;
        end if;
        return array[null, 1, c, 0]::float8[];
    end if;
    tr := greatest(h - l, abs(s[3] - h), abs(l - s[3]));
    s[3] := c;
    s[2] := s[2] + 1;
    if s[2] <= n + 1 then
        s[4] := s[4] + tr;
        if s[2] = n + 1 then
            s[1] := s[4] / n;
        end if;
        return s;
    end if;
    s[1] := s[1] * (n - 1);
    s[1] := s[1] + tr;
    s[1] := s[1] / n;
    return s;
end $$;

create or replace aggregate features.qtis_atr(float8, float8, float8, integer, float8[]) (
    sfunc = features.qtis_atr_step, stype = float8[]
);

-- Parabolic SAR, TA-Lib's algorithm and start-up. The value is the SAR in force for this bar.
-- state: [value, count, is_long, sar, ep, af, prev_high, prev_low]
create or replace function features.qtis_psar_step(
    s float8[], h float8, l float8, acc float8, amax float8, seed float8[]
) returns float8[] language plpgsql immutable as $$
declare
    ph float8;
    pl float8;
    sar float8;
    ep float8;
    af float8;
    out float8;
begin
    if s is null then
        if seed is not null then
            return seed;
        end if;
        return array[null, 1, null, null, null, null, h, l]::float8[];
    end if;
    if acc > amax then
        acc := amax;
    end if;
    if s[2] = 1 then
        -- bar 1 decides the direction (TA-Lib: short when bar 1's minus-DM is positive)
        if (s[8] - l) > 0 and (h - s[7]) < (s[8] - l) then
            s[3] := 0; s[5] := l; s[4] := s[7];
        else
            s[3] := 1; s[5] := h; s[4] := s[8];
        end if;
        s[6] := acc;
        ph := h; pl := l;
    else
        ph := s[7]; pl := s[8];
    end if;
    sar := s[4]; ep := s[5]; af := s[6];
    if s[3] = 1 then
        if l <= sar then
            s[3] := 0;
            sar := ep;
            if sar < ph then sar := ph; end if;
            if sar < h then sar := h; end if;
            out := sar;
            af := acc;
            ep := l;
            sar := sar + af * (ep - sar);
            if sar < ph then sar := ph; end if;
            if sar < h then sar := h; end if;
        else
            out := sar;
            if h > ep then
                ep := h;
                af := af + acc;
                if af > amax then af := amax; end if;
            end if;
            sar := sar + af * (ep - sar);
            if sar > pl then sar := pl; end if;
            if sar > l then sar := l; end if;
        end if;
    else
        if h >= sar then
            s[3] := 1;
            sar := ep;
            if sar > pl then sar := pl; end if;
            if sar > l then sar := l; end if;
            out := sar;
            af := acc;
            ep := h;
            sar := sar + af * (ep - sar);
            if sar > pl then sar := pl; end if;
            if sar > l then sar := l; end if;
        else
            out := sar;
            if l < ep then
                ep := l;
                af := af + acc;
                if af > amax then af := amax; end if;
            end if;
            sar := sar + af * (ep - sar);
            if sar < ph then sar := ph; end if;
            if sar < h then sar := h; end if;
        end if;
    end if;
    return array[out, s[2] + 1, s[3], sar, ep, af, h, l]::float8[];
end $$;

create or replace aggregate features.qtis_psar(float8, float8, float8, float8, float8[]) (
    sfunc = features.qtis_psar_step, stype = float8[]
);
{% endmacro %}
