"""Standard errors that respect a sample survey's design (strata, clusters, weights).

H, M0 and A are ratios of weighted sums, R = Y / X.  Their variance is estimated by
Taylor linearisation (Woodruff): each household's linearised value
z = (y - R x) / X is summed by cluster, and the variance is the between-cluster
variance within strata, n_h / (n_h - 1) * sum_c (z_hc - mean_h)^2, summed over strata,
with clusters counted over the whole sample so that subpopulations (a province, a
subgroup) are treated as domains, as survey packages do.  Confidence intervals are
normal, estimate +/- 1.96 SE.  Without clusters each household is its own cluster;
without strata the sample is one stratum."""

from __future__ import annotations

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


def _domain_keys(hh: pd.DataFrame, level: str, subgroup: str | None) -> pd.Series:
    parts = []
    if level != "total":
        parts.append(hh[f"{level}_code"].astype(str))
    if subgroup:
        parts.append(hh[f"sg_{subgroup}"].astype(str))
    if not parts:
        return pd.Series("", index=hh.index)
    key = parts[0]
    for p in parts[1:]:
        key = key + "\x1f" + p
    return key


def linearised_se(y: np.ndarray, x: np.ndarray, domain: pd.Series, stratum: pd.Series,
                  cluster: pd.Series) -> pd.Series:
    """SE of R_d = sum(y) / sum(x) for every domain value d."""
    df = pd.DataFrame({"d": domain.values, "y": y, "x": x, "h": stratum.values,
                       "c": cluster.values})
    tot = df.groupby("d", sort=False)[["y", "x"]].sum()
    ratio = tot["y"] / tot["x"].where(tot["x"] > 0)
    df["z"] = (df["y"] - df["d"].map(ratio).fillna(0) * df["x"]) / df["d"].map(tot["x"])
    zc = df.groupby(["d", "h", "c"], sort=False)["z"].sum().reset_index()
    n_h = df.groupby("h")["c"].nunique()
    zc["z2"] = zc["z"] ** 2
    s = zc.groupby(["d", "h"], sort=False)[["z", "z2"]].sum().reset_index()
    s["n"] = s["h"].map(n_h)
    s["v"] = np.where(s["n"] > 1, s["n"] / (s["n"] - 1).clip(lower=1)
                      * (s["z2"] - s["z"] ** 2 / s["n"]), 0.0)
    var = s.groupby("d", sort=False)["v"].sum().clip(lower=0)
    return np.sqrt(var)


def survey_errors(mpi: pd.DataFrame, hh: pd.DataFrame, plan) -> pd.DataFrame:
    """Add se_/ci_low_/ci_high_ columns for H, M0 and A to the MPI table."""
    hh = hh.copy()
    hh["weight"] = hh["weight"].astype(float)
    stratum = hh["survey_stratum"].fillna("_").astype(str)
    # Without clusters each household is its own primary sampling unit.
    cluster = hh["survey_cluster"].astype(str).where(hh["survey_cluster"].notna(),
                                                     "_hh" + hh.index.astype(str))
    out = mpi.copy()
    for col in ("se_H", "se_M0", "se_A"):
        out[col] = np.nan
    groups = out[["level", "subgroup"]].drop_duplicates().itertuples(index=False)
    for level, subgroup in groups:
        sub = subgroup if isinstance(subgroup, str) else None
        dom = _domain_keys(hh, level, sub)
        for i, k in enumerate(plan.ks):
            poor = hh[f"mpi_poor_{i}"].astype(float).to_numpy()
            w = hh["weight"].to_numpy()
            score = hh["score"].astype(float).to_numpy()
            se = {
                "H": linearised_se(w * poor, w, dom, stratum, cluster),
                "M0": linearised_se(w * poor * score, w, dom, stratum, cluster),
                "A": linearised_se(w * poor * score, w * poor, dom, stratum, cluster),
            }
            rows = (out["level"] == level) & (out["k"] == float(k)) & (
                out["subgroup"].isna() if sub is None else out["subgroup"] == sub)
            keys = _row_keys(out.loc[rows], level, sub)
            for m, s in se.items():
                out.loc[rows, f"se_{m}"] = keys.map(s).to_numpy()
    for m in ("H", "M0", "A"):
        out[f"ci_low_{m}"] = out[m] - Z95 * out[f"se_{m}"]
        out[f"ci_high_{m}"] = out[m] + Z95 * out[f"se_{m}"]
    return out


def _row_keys(rows: pd.DataFrame, level: str, subgroup: str | None) -> pd.Series:
    parts = []
    if level != "total":
        parts.append(rows["code"].astype(str))
    if subgroup:
        parts.append(rows["subgroup_value"].astype(str))
    if not parts:
        return pd.Series("", index=rows.index)
    key = parts[0]
    for p in parts[1:]:
        key = key + "\x1f" + p
    return key
