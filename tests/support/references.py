"""Feature values computed by TA-Lib, the library whose conventions the feature spec follows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib


def talib_reference(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every TA-Lib-covered feature, computed by TA-Lib from one symbol's bars."""
    h, lo, c, v = (bars[k].to_numpy(float) for k in ("high", "low", "close", "volume"))
    ref = {f"sma_{n}": talib.SMA(c, n) for n in (5, 10, 20, 50, 200)}
    ref |= {f"ema_{n}": talib.EMA(c, n) for n in (12, 26, 50)}
    ref["macd"], ref["macd_signal"], ref["macd_hist"] = talib.MACD(c, 12, 26, 9)
    ref["bb_upper_20"], ref["bb_middle_20"], ref["bb_lower_20"] = talib.BBANDS(c, 20, 2, 2, 0)
    ref["stoch_k_14"], ref["stoch_d_3"] = talib.STOCHF(h, lo, c, 14, 3, 0)
    ref |= {
        "psar": talib.SAR(h, lo, 0.02, 0.2),
        "rsi_14": talib.RSI(c, 14),
        "willr_14": talib.WILLR(h, lo, c, 14),
        "roc_10": talib.ROC(c, 10),
        "obv": talib.OBV(c, v),
        "ad": talib.AD(h, lo, c, v),
        "atr_14": talib.ATR(h, lo, c, 14),
    }
    return ref
