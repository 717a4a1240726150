"""Monthly demand forecasts with statsmodels' state-space SARIMAX: a seasonal model when
two years of history exist, a plain one otherwise, and the months of campaign days as an
explanatory variable (poverty alleviation days sell more).  Intervals come from the
model, so the plan can say how sure it is."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_MONTHS = 6  # below this a forecast is the recent mean with a wide interval


@dataclass
class Forecast:
    months: list[str]  # YYYY-MM
    mean: list[float]
    low80: list[float]
    high80: list[float]
    low95: list[float]
    high95: list[float]
    method: str


def forecast(history: pd.Series, campaign: pd.Series | None, horizon: int,
             future_campaign: np.ndarray | None = None) -> Forecast:
    """``history``: units sold per month (a PeriodIndex, months with no sale as 0);
    ``campaign``: share of each month's days inside campaign windows."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    start = history.index[-1] + 1
    months = [str(p) for p in pd.period_range(start, periods=horizon, freq="M")]
    y = history.astype(float).to_numpy()
    if len(y) < MIN_MONTHS:
        mean = float(y.mean()) if len(y) else 0.0
        sd = float(y.std(ddof=1)) if len(y) > 1 else max(mean, 1.0)
        return Forecast(months, [mean] * horizon, [max(0.0, mean - 1.28 * sd)] * horizon,
                        [mean + 1.28 * sd] * horizon, [max(0.0, mean - 1.96 * sd)] * horizon,
                        [mean + 1.96 * sd] * horizon, "recent mean (too little history)")
    exog = None
    if campaign is not None and campaign.to_numpy().std() > 0:
        exog = campaign.to_numpy().reshape(-1, 1)
        future = (future_campaign if future_campaign is not None else np.zeros(horizon)).reshape(-1, 1)
    else:
        future = None
    seasonal = len(y) >= 24
    model = SARIMAX(y, exog=exog, order=(1, 0, 0), trend="c",
                    seasonal_order=(1, 0, 0, 12) if seasonal else (0, 0, 0, 0),
                    # Stationary AR terms: unconstrained, the optimiser can wander to an
                    # explosive fit (seen with scipy 1.17: an AR coefficient of -58 and a
                    # forecast of -2.8e9 units on a plain seasonal series).
                    enforce_stationarity=True, enforce_invertibility=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short series
        fit = model.fit(disp=False)
    pred = fit.get_forecast(horizon, exog=future)
    mean = np.maximum(pred.predicted_mean, 0)
    ci80, ci95 = pred.conf_int(alpha=0.2), pred.conf_int(alpha=0.05)
    name = "SARIMAX(1,0,0)" + ("(1,0,0,12)" if seasonal else "") + (" + campaign days" if exog is not None else "")
    return Forecast(months, [float(x) for x in mean],
                    [float(max(0, x)) for x in ci80[:, 0]], [float(x) for x in ci80[:, 1]],
                    [float(max(0, x)) for x in ci95[:, 0]], [float(x) for x in ci95[:, 1]], name)
