"""Estimators of a program's effect: difference in differences with household and year
fixed effects, propensity-score matching and inverse-probability weighting, with the
covariate balance table and the overlap check that go with them.

The regressions are statsmodels' and linearmodels': the logit of the propensity score
(``statsmodels.Logit``), the weighted regression of IPW with robust standard errors
(``statsmodels.WLS``) and the two-way fixed-effects panel regression with clustered
standard errors (``linearmodels.PanelOLS``).  What is written here is only the matching
step (nearest neighbours on the estimated score, with replacement, ties kept) and the
Abadie–Imbens (2006) variance of the matching estimator, which no maintained Python
library provides.

Every estimator takes plain pandas frames, so the same code runs on the registry's panel
(``panel.py``), on simulated panels and on the LaLonde / Dehejia–Wahba NSW data of the
validation tests.  Each returns an :class:`Estimate`: the figure, its standard error and
how it was computed, the 95% confidence interval, the numbers of observations and the
caveats of the method.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

Z95 = 1.959963984540054  # the 97.5% point of the standard normal

CAVEAT_UNCONFOUNDED = ("unconfoundedness is assumed: participation depends only on the "
                       "baseline characteristics used; unobserved differences (motivation, "
                       "cadres' choices) bias the estimate and cannot be tested for")
CAVEAT_OVERLAP = ("the effect is estimated only where treated and comparison households "
                  "overlap in their propensity scores (see the overlap check)")
FEW_CLUSTERS = 30
FEW_CLUSTERS_CAVEAT = ("only {n} clusters: clustered standard errors are unreliable with "
                       "fewer than about 30; cluster by household or read the interval as rough")
CAVEAT_PARALLEL = ("parallel trends are assumed: without the program, participants' "
                   "outcomes would have changed like non-participants'; with two periods "
                   "this cannot be tested (no pre-treatment trend to compare)")


@dataclass
class Estimate:
    """One estimate of the average effect of the treatment on the treated (ATT)."""

    method: str
    estimate: float
    se: float
    n: int
    n_treated: int
    n_control: int
    se_method: str
    estimand: str = "ATT"
    caveats: list[str] = field(default_factory=list)
    balance: list[dict] | None = None
    overlap: dict | None = None
    details: dict = field(default_factory=dict)

    @property
    def ci(self) -> tuple[float, float]:
        return (self.estimate - Z95 * self.se, self.estimate + Z95 * self.se)

    def covers(self, value: float) -> bool:
        low, high = self.ci
        return low <= value <= high

    def as_dict(self) -> dict:
        low, high = self.ci
        out = {"method": self.method, "estimand": self.estimand,
               "estimate": _num(self.estimate), "se": _num(self.se),
               "ci95": [_num(low), _num(high)], "n": self.n, "n_treated": self.n_treated,
               "n_control": self.n_control, "se_method": self.se_method,
               "caveats": list(self.caveats)}
        if self.balance is not None:
            out["balance"] = self.balance
        if self.overlap is not None:
            out["overlap"] = self.overlap
        if self.details:
            out["details"] = {k: _num(v) if isinstance(v, float) else v
                              for k, v in self.details.items()}
        return out


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


# ------------------------------------------------------------------ naive and benchmark


def difference_in_means(df: pd.DataFrame, outcome: str, treat: str) -> Estimate:
    """Treated minus control mean, with a heteroskedasticity-robust (HC1) standard error:
    the experimental benchmark when assignment was random, the naive comparison when not."""
    import statsmodels.api as sm

    y = df[outcome].astype(float)
    t = df[treat].astype(float)
    model = sm.OLS(y, sm.add_constant(t.rename("treated"), has_constant="add"))
    fit = model.fit(cov_type="HC1")
    classical = float(model.fit().bse["treated"])
    n1 = int(t.sum())
    return Estimate(
        method="difference in means", estimate=float(fit.params["treated"]),
        se=float(fit.bse["treated"]), n=len(df), n_treated=n1, n_control=len(df) - n1,
        se_method="OLS on a treatment dummy, HC1 robust standard error", estimand="ATE / ATT",
        caveats=["a causal effect only if participation was randomly assigned"],
        details={"se_homoskedastic": classical})


# ------------------------------------------------------------------ difference in differences


def did(long: pd.DataFrame, outcome: str, unit: str = "household_id", time: str = "year",
        treated: str = "d", cluster: str | None = None) -> Estimate:
    """Two-way fixed-effects difference in differences: outcome on the treatment
    indicator ``treated`` (1 for a participant's years after it joined), household and
    year effects absorbed, standard errors clustered by household (or by ``cluster``, e.g.
    the village).  With two years and a balanced panel this is exactly the
    difference in the treated's and the controls' mean changes."""
    from linearmodels.panel import PanelOLS

    data = long[[unit, time, outcome, treated] + ([cluster] if cluster else [])].dropna()
    data = data.set_index([unit, time]).sort_index()
    model = PanelOLS(data[outcome].astype(float), data[[treated]].astype(float),
                     entity_effects=True, time_effects=True, drop_absorbed=False,
                     check_rank=True)
    if cluster:
        codes = pd.Series(pd.factorize(data[cluster])[0], index=data.index, name=cluster)
        fit = model.fit(cov_type="clustered", clusters=codes.to_frame())
        se_method = f"clustered by {cluster} ({codes.nunique()} clusters)"
    else:
        fit = model.fit(cov_type="clustered", cluster_entity=True)
        se_method = f"clustered by {unit} ({data.index.get_level_values(0).nunique()} clusters)"
    n_clusters = codes.nunique() if cluster else data.index.get_level_values(0).nunique()
    ever = data.groupby(level=0)[treated].max()
    n_units = len(ever)
    n1 = int((ever > 0).sum())
    periods = data.index.get_level_values(1).nunique()
    caveats = [CAVEAT_PARALLEL] if periods <= 2 else [
        ("parallel trends are assumed; with staggered entry the two-way fixed-effects "
        "estimate weights the cohorts' effects and can mislead when effects change over time")]
    caveats.append("households whose participation began at or before the baseline year "
                   "are left out (they are treated in both periods)")
    if n_clusters < FEW_CLUSTERS:
        caveats.append(FEW_CLUSTERS_CAVEAT.format(n=n_clusters))
    return Estimate(
        method="difference in differences (household and year fixed effects)",
        estimate=float(fit.params[treated]), se=float(fit.std_errors[treated]),
        n=int(fit.nobs), n_treated=n1, n_control=n_units - n1,
        se_method=f"linearmodels PanelOLS, {se_method}", caveats=caveats,
        details={"periods": int(periods), "households": n_units})


# ------------------------------------------------------------------ propensity score


def _design(df: pd.DataFrame, covariates: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The covariates as floats, without constant or collinear columns (dropped, named)."""
    X = df[covariates].astype(float)
    dropped = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
    X = X.drop(columns=dropped)
    kept: list[str] = []
    for c in X.columns:  # greedy: keep a column only if it adds to the rank
        trial = np.column_stack([np.ones(len(X))] + [X[k].to_numpy() for k in kept + [c]])
        if np.linalg.matrix_rank(trial) == trial.shape[1]:
            kept.append(c)
        else:
            dropped.append(c)
    return X[kept], dropped


def propensity_score(df: pd.DataFrame, treat: str, covariates: list[str]) -> tuple[pd.Series, dict]:
    """Logit of participation on the covariates (statsmodels).  Constant and collinear
    covariates are dropped; under perfect separation a lightly L2-penalised logit is
    used instead (and said so)."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        PerfectSeparationWarning,
    )

    X, dropped = _design(df, covariates)
    # Scaled for the optimiser only; the score does not depend on the scaling.
    sd = X.std(ddof=0).replace(0, 1.0)
    Xs = sm.add_constant((X - X.mean()) / sd, has_constant="add")
    y = df[treat].astype(float)
    info = {"model": "logit (statsmodels)", "covariates": list(X.columns), "dropped": dropped}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sm.Logit(y, Xs).fit(disp=0, maxiter=200)
        p = res.predict(Xs)
        info["pseudo_r2"] = float(res.prsquared)
    except (np.linalg.LinAlgError, PerfectSeparationWarning, ConvergenceWarning, ValueError) as exc:
        alpha = np.r_[0.0, np.full(Xs.shape[1] - 1, 1.0)] / len(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.Logit(y, Xs).fit_regularized(alpha=alpha, disp=0, maxiter=1000)
        p = res.predict(Xs)
        info["model"] = "L2-penalised logit (statsmodels), after: " + type(exc).__name__
    eps = 1e-9
    return pd.Series(np.clip(np.asarray(p, dtype=float), eps, 1 - eps), index=df.index,
                     name="pscore"), info


def overlap_check(ps: pd.Series, t: pd.Series, rule: str = "minmax") -> tuple[pd.Series, dict]:
    """Propensity-score ranges of treated and controls and the common support.

    ``rule``: ``"minmax"`` keeps treated households whose score lies within the controls'
    range and controls at or above the lowest treated score (Dehejia–Wahba); ``"none"``
    keeps everyone; a number a (e.g. ``"0.1"``) keeps scores within [a, 1 - a]
    (Crump, Hotz, Imbens and Mitnik 2009).  Returns the mask of households kept."""
    t = t.astype(bool)
    pt, pc = ps[t], ps[~t]
    lo, hi = float(pc.min()), float(pc.max())
    outside = (pt < lo) | (pt > hi)
    if rule == "minmax":
        keep = (t & (ps >= lo) & (ps <= hi)) | (~t & (ps >= float(pt.min())))
        described = ("min-max common support: treated kept within the controls' score range, "
                     "controls kept at or above the lowest treated score")
    elif rule == "none":
        keep = pd.Series(True, index=ps.index)
        described = "no trimming"
    else:
        try:
            a = float(rule)
            assert 0 <= a < 0.5
        except (ValueError, AssertionError):
            from ..errors import InvalidInput
            raise InvalidInput(f"trim rule {rule!r}: use minmax, none or a number in [0, 0.5)",
                               field="trim", value=rule) from None
        keep = (ps >= a) & (ps <= 1 - a)
        described = f"scores kept within [{a}, {1 - a}] (Crump et al. 2009)"
    q = [0.0, 0.05, 0.5, 0.95, 1.0]
    info = {
        "treated": {"n": int(t.sum()), **{f"p{int(x * 100)}": _num(float(pt.quantile(x))) for x in q}},
        "control": {"n": int((~t).sum()), **{f"p{int(x * 100)}": _num(float(pc.quantile(x))) for x in q}},
        "treated_outside_control_range": int(outside.sum()),
        "share_treated_outside_support": _num(float(outside.mean())) if len(pt) else None,
        "rule": described,
        "kept_treated": int((keep & t).sum()), "kept_control": int((keep & ~t).sum()),
        "dropped_treated": int((~keep & t).sum()), "dropped_control": int((~keep & ~t).sum()),
    }
    return keep, info


def _wmean_var(x: np.ndarray, w: np.ndarray | None) -> tuple[float, float]:
    if w is None:
        return float(x.mean()), float(x.var(ddof=1)) if len(x) > 1 else 0.0
    m = float(np.average(x, weights=w))
    return m, float(np.average((x - m) ** 2, weights=w))


def balance_table(df: pd.DataFrame, treat: str, covariates: list[str],
                  weights: pd.Series | None = None, label: str = "adjusted") -> list[dict]:
    """Standardised mean differences before and after adjustment: the difference in
    means over the pooled standard deviation of the unadjusted groups, sqrt((s1² + s0²)/2)
    (the same denominator before and after, so the two are comparable; |SMD| < 0.1 is the
    usual threshold).  ``weights``: the controls' matching or IPW weights (the treated
    keep weight 1 in the ATT)."""
    t = df[treat].astype(bool).to_numpy()
    rows = []
    for c in covariates:
        x = df[c].astype(float).to_numpy()
        m1, v1 = _wmean_var(x[t], None)
        m0, v0 = _wmean_var(x[~t], None)
        pooled = math.sqrt((v1 + v0) / 2)
        row = {"covariate": c, "mean_treated": _num(m1), "mean_control": _num(m0),
               "smd_before": _num((m1 - m0) / pooled) if pooled > 0 else 0.0}
        if weights is not None:
            w = weights.to_numpy(dtype=float)
            wt, wc = w[t], w[~t]
            a1 = float(np.average(x[t], weights=wt)) if wt.sum() > 0 else float("nan")
            a0 = float(np.average(x[~t], weights=wc)) if wc.sum() > 0 else float("nan")
            row.update({f"mean_treated_{label}": _num(a1), f"mean_control_{label}": _num(a0),
                        "smd_after": _num((a1 - a0) / pooled) if pooled > 0 else 0.0})
        rows.append(row)
    return rows


# ------------------------------------------------------------------ matching


def _nearest(sorted_p: np.ndarray, p: float, m: int, exclude: int | None = None,
             ties: bool = True) -> np.ndarray:
    """Positions in ``sorted_p`` of the ``m`` nearest values to ``p`` (all values tied at
    the m-th distance included when ``ties``); ``exclude``: a position to skip."""
    n = len(sorted_p)
    i = int(np.searchsorted(sorted_p, p))
    lo, hi = max(0, i - m - 1), min(n, i + m + 1)
    cand = np.arange(lo, hi)
    if exclude is not None:
        cand = cand[cand != exclude]
    d = np.abs(sorted_p[cand] - p)
    order = np.argsort(d, kind="stable")
    if len(cand) <= m or not ties:
        return cand[order[:m]]
    dm = d[order[m - 1]]
    tol = 1e-12 + 1e-9 * dm
    left = int(np.searchsorted(sorted_p, p - dm - tol, side="left"))
    right = int(np.searchsorted(sorted_p, p + dm + tol, side="right"))
    out = np.arange(left, right)
    if exclude is not None:
        out = out[out != exclude]
    return out


def psm(df: pd.DataFrame, outcome: str, treat: str, covariates: list[str],
        neighbours: int = 1, caliper: float | None = None, trim: str = "minmax",
        variance_neighbours: int = 2, cluster: str | None = None) -> Estimate:
    """Propensity-score matching: each treated household matched to its ``neighbours``
    nearest controls on the estimated score, with replacement (ties kept), inside the
    common support and, when given, within ``caliper`` (in standard deviations of the
    logit of the score); the ATT is the mean treated-minus-matched-controls difference.

    Standard error: Abadie and Imbens (2006), the population-ATT variance, with the
    conditional outcome variances estimated by matching each control to its
    ``variance_neighbours`` nearest other controls.  The score is treated as known (the
    Abadie–Imbens 2016 correction for its estimation is not applied).  The bootstrap is
    not used: it is invalid for nearest-neighbour matching (Abadie and Imbens 2008)."""
    data = df.dropna(subset=[outcome, treat] + covariates).copy()
    ps, ps_info = propensity_score(data, treat, covariates)
    keep, overlap = overlap_check(ps, data[treat], trim)
    t_all = data[treat].astype(bool).to_numpy()
    y = data[outcome].astype(float).to_numpy()
    p = ps.to_numpy()
    ctrl = np.flatnonzero(~t_all & keep.to_numpy())
    trt = np.flatnonzero(t_all & keep.to_numpy())
    if len(ctrl) < max(neighbours, variance_neighbours) + 1 or len(trt) == 0:
        from ..errors import InvalidInput
        raise InvalidInput("too few treated or comparison households on the common support "
                           f"to match ({len(trt)} treated, {len(ctrl)} controls)")
    order = np.argsort(p[ctrl], kind="stable")
    ctrl_sorted = ctrl[order]
    pc = p[ctrl_sorted]
    logit = np.log(p / (1 - p))
    cal = caliper * float(np.std(logit)) if caliper else None
    k = np.zeros(len(ctrl_sorted))       # K_j: sum over treated of 1/#J(i)
    k2 = np.zeros(len(ctrl_sorted))      # sum over treated of 1/#J(i)^2
    diffs, matched_t, unmatched = [], [], 0
    for i in trt:
        pos = _nearest(pc, p[i], neighbours)
        if cal is not None:
            pos = pos[np.abs(logit[ctrl_sorted[pos]] - logit[i]) <= cal]
            if len(pos) == 0:
                unmatched += 1
                continue
        share = 1.0 / len(pos)
        k[pos] += share
        k2[pos] += share * share
        diffs.append(y[i] - y[ctrl_sorted[pos]].mean())
        matched_t.append(i)
    diffs_a = np.asarray(diffs)
    n1 = len(diffs_a)
    if n1 == 0:
        from ..errors import InvalidInput
        raise InvalidInput("no treated household found a match within the caliper")
    att = float(diffs_a.mean())
    # Conditional variances of the controls that were used, by matching within the controls.
    used = np.flatnonzero(k > 0)
    yc = y[ctrl_sorted]
    sigma2 = np.zeros(len(ctrl_sorted))
    j = variance_neighbours
    for pos in used:
        nb = _nearest(pc, pc[pos], j, exclude=pos, ties=False)
        sigma2[pos] = j / (j + 1) * (yc[pos] - yc[nb].mean()) ** 2
    var = (np.sum((diffs_a - att) ** 2) + np.sum((k ** 2 - k2) * sigma2)) / n1 ** 2
    weights = np.zeros(len(data))
    weights[np.asarray(matched_t)] = 1.0
    weights[ctrl_sorted] = k
    w = pd.Series(weights, index=data.index)
    overlap["caliper"] = caliper
    overlap["treated_without_match_in_caliper"] = unmatched
    return Estimate(
        method=f"propensity-score matching ({neighbours} nearest neighbour"
               f"{'s' if neighbours > 1 else ''}, with replacement)",
        estimate=att, se=math.sqrt(var), n=n1 + int((k > 0).sum()), n_treated=n1,
        n_control=int((k > 0).sum()),
        se_method=("Abadie-Imbens (2006) variance for matching with replacement, "
                   f"conditional variances from {j} within-group neighbours; propensity "
                   "score treated as known"),
        caveats=[CAVEAT_UNCONFOUNDED, CAVEAT_OVERLAP,
                 ("matching on an estimated score: the result depends on the covariates "
                 "and the logit's form; check the balance table")],
        balance=balance_table(data, treat, covariates, w, "matched"), overlap=overlap,
        details={"propensity": ps_info, "controls_used": int((k > 0).sum()),
                 "max_times_a_control_is_used": _num(float(k.max()))})


# ------------------------------------------------------------------ weighting


def ipw(df: pd.DataFrame, outcome: str, treat: str, covariates: list[str],
        trim: str = "minmax", cluster: str | None = None) -> Estimate:
    """Inverse-probability weighting for the ATT: treated households weigh 1, controls
    p/(1 - p) (normalised, Hájek), within the common support; the ATT is the coefficient
    of the treatment dummy in the weighted regression (statsmodels WLS) with robust (HC1)
    standard errors, or clustered by ``cluster``.  The standard error treats the weights
    as known (the estimation of the score is not propagated)."""
    import statsmodels.api as sm

    data = df.dropna(subset=[outcome, treat] + covariates).copy()
    ps, ps_info = propensity_score(data, treat, covariates)
    keep, overlap = overlap_check(ps, data[treat], trim)
    full = data
    data, ps = data[keep], ps[keep]
    t = data[treat].astype(float)
    w = np.where(t == 1, 1.0, ps / (1 - ps))
    w = pd.Series(w, index=data.index)
    X = sm.add_constant(t.rename("treated"), has_constant="add")
    model = sm.WLS(data[outcome].astype(float), X, weights=w)
    if cluster:
        groups = pd.factorize(data[cluster])[0]
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
        se_method = f"weighted least squares, clustered by {cluster} ({len(set(groups))} clusters)"
        few = len(set(groups)) < FEW_CLUSTERS
    else:
        fit = model.fit(cov_type="HC1")
        se_method = "weighted least squares, HC1 robust standard error"
        few = False
    wc = w[t == 0]
    ess = float(wc.sum() ** 2 / (wc ** 2).sum()) if len(wc) else 0.0
    return Estimate(
        method="inverse-probability weighting (ATT weights)",
        estimate=float(fit.params["treated"]), se=float(fit.bse["treated"]), n=len(data),
        n_treated=int(t.sum()), n_control=int((t == 0).sum()),
        se_method=se_method + "; weights treated as known",
        caveats=[CAVEAT_UNCONFOUNDED, CAVEAT_OVERLAP,
                 ("a few controls with scores near 1 can carry large weights; see the "
                 "controls' effective sample size")]
        + ([FEW_CLUSTERS_CAVEAT.format(n=len(set(groups)))] if few else []),
        balance=balance_table(full, treat, covariates, w.reindex(full.index, fill_value=0.0),
                              "weighted"),
        overlap=overlap,
        details={"propensity": ps_info, "control_effective_sample_size": ess,
                 "max_control_weight_share": _num(float(wc.max() / wc.sum())) if len(wc) else None})
