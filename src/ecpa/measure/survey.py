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


def _joined(parts: list[pd.Series], index) -> pd.Series:
    """One key per row from several key columns (or '' for the whole sample)."""
    if not parts:
        return pd.Series("", index=index)
    key = parts[0]
    for p in parts[1:]:
        key = key + "\x1f" + p
    return key


def _domain_keys(hh: pd.DataFrame, level: str, subgroup: str | None) -> pd.Series:
    parts = [hh[f"{level}_code"].astype(str)] if level != "total" else []
    if subgroup:
        parts.append(hh[f"sg_{subgroup}"].astype(str))
    return _joined(parts, hh.index)


def _row_keys(rows: pd.DataFrame, level: str, subgroup: str | None) -> pd.Series:
    parts = [rows["code"].astype(str)] if level != "total" else []
    if subgroup:
        parts.append(rows["subgroup_value"].astype(str))
    return _joined(parts, rows.index)


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


def _design(hh: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    stratum = hh["survey_stratum"].fillna("_").astype(str)
    # Without clusters each household is its own primary sampling unit.
    cluster = hh["survey_cluster"].astype(str).where(hh["survey_cluster"].notna(),
                                                     "_hh" + hh.index.astype(str))
    return stratum, cluster


def _add_errors(table: pd.DataFrame, hh: pd.DataFrame, ratios, select) -> pd.DataFrame:
    """For every (level, subgroup) of ``table`` and every variant (a k, a line), the SE
    of each ratio measure; ``ratios(variant)`` gives {measure: (y, x)} over households,
    ``select(variant)`` the table's rows of that variant."""
    stratum, cluster = _design(hh)
    out = table.copy()
    measures = None
    for level, subgroup in out[["level", "subgroup"]].drop_duplicates().itertuples(index=False):
        sub = subgroup if isinstance(subgroup, str) else None
        dom = _domain_keys(hh, level, sub)
        for variant, rows_of_variant in select(out):
            pairs = ratios(variant)
            measures = list(pairs)
            rows = rows_of_variant & (out["level"] == level) & (
                out["subgroup"].isna() if sub is None else out["subgroup"] == sub)
            keys = _row_keys(out.loc[rows], level, sub)
            for m, (y, x) in pairs.items():
                se = linearised_se(y, x, dom, stratum, cluster)
                out.loc[rows, f"se_{m}"] = keys.map(se).to_numpy()
    for m in measures or []:
        out[f"ci_low_{m}"] = out[m] - Z95 * out[f"se_{m}"]
        out[f"ci_high_{m}"] = out[m] + Z95 * out[f"se_{m}"]
    return out


def survey_errors(mpi: pd.DataFrame, fgt: pd.DataFrame, hh: pd.DataFrame, plan
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Standard errors and 95 % intervals of H, M0 and A (every k) and of the FGT
    measures (every line)."""
    w = hh["weight"].astype(float).to_numpy()
    score = hh["score"].astype(float).to_numpy()
    known = hh["income_pc_fen"].notna().to_numpy(dtype=float)

    def af(i):
        poor = hh[f"mpi_poor_{i}"].astype(float).to_numpy()
        return {"H": (w * poor, w), "M0": (w * poor * score, w), "A": (w * poor * score, w * poor)}

    def fgt_ratios(line):
        poor = hh[f"poor_{line}"].fillna(0).astype(float).to_numpy()
        gap = hh[f"gap_{line}"].fillna(0).astype(float).to_numpy()
        return {"headcount_ratio": (w * poor, w * known), "poverty_gap": (w * gap, w * known),
                "squared_poverty_gap": (w * gap * gap, w * known)}

    mpi = _add_errors(mpi, hh, af, lambda t: [(i, np.isclose(t["k"], float(k)))
                                              for i, k in enumerate(plan.ks)])
    fgt = _add_errors(fgt, hh, fgt_ratios, lambda t: [(n, t["line"] == n)
                                                      for n in plan.config.lines])
    return mpi, fgt
