"""Impact evaluation as a use case: a region's panel, the chosen estimators, one answer
(estimates, balance, overlap, caveats) for the API and the CLI."""

from __future__ import annotations

import pandas as pd

from ..errors import InvalidInput
from ..people.access import Actor
from . import impact
from .panel import OUTCOMES, Panel, Treatment, build_panel

METHODS = ("did", "psm", "ipw")
CLUSTERS = ("household", "village")


def _check(outcome: str, methods: list[str], cluster: str, trim: str = "minmax") -> None:
    if trim not in ("minmax", "none"):
        try:
            ok = 0 <= float(trim) < 0.5
        except ValueError:
            ok = False
        if not ok:
            raise InvalidInput(f"trim rule {trim!r}: use minmax, none or a number in [0, 0.5)",
                               field="trim", value=trim)
    if outcome not in OUTCOMES:
        raise InvalidInput(f"unknown outcome {outcome!r}; use {', '.join(OUTCOMES)}",
                           field="outcome", value=outcome)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InvalidInput(f"unknown method(s) {', '.join(bad) or '(none)'}; use "
                           f"{', '.join(METHODS)}", field="methods", value=bad)
    if cluster not in CLUSTERS:
        raise InvalidInput(f"cluster by {', '.join(CLUSTERS)}, not {cluster!r}",
                           field="cluster", value=cluster)


def estimate(panel: Panel, outcome: str = "income_pc", methods: list[str] | tuple = METHODS,
             trim: str = "minmax", neighbours: int = 1, caliper: float | None = None,
             cluster: str = "household") -> dict:
    """Run the estimators on a panel.  DiD uses the change from baseline to follow-up;
    matching and weighting compare follow-up outcomes, with baseline characteristics
    (baseline income among them) in the propensity score."""
    methods = list(dict.fromkeys(methods))
    _check(outcome, methods, cluster, trim)
    cross = panel.cross
    n1 = int(cross["treated"].sum())
    n0 = len(cross) - n1
    if n1 < 2 or n0 < 2:
        raise InvalidInput(f"too few households to compare: {n1} treated and {n0} comparison "
                           f"households with incomes in {panel.baseline} and {panel.followup}",
                           **panel.summary()["excluded"])
    cl = "village_code" if cluster == "village" else None
    results: list[impact.Estimate] = []
    errors: dict[str, str] = {}
    for m in methods:
        try:
            if m == "did":
                results.append(impact.did(panel.long, outcome, cluster=cl))
            elif m == "psm":
                results.append(impact.psm(cross, outcome, "treated", panel.covariates,
                                          neighbours=neighbours, caliper=caliper, trim=trim))
            else:
                results.append(impact.ipw(cross, outcome, "treated", panel.covariates,
                                          trim=trim, cluster=cl))
        except InvalidInput as exc:
            errors[m] = exc.message
    naive = impact.difference_in_means(cross, outcome, "treated")
    means = (cross.groupby("treated")[[f"{outcome}_base", f"{outcome}_follow"]].mean()
             .rename(index={0: "comparison", 1: "treated"}))
    return {
        **panel.summary(),
        "outcome": outcome,
        "outcome_unit": "yuan per person per year" if outcome == "income_pc"
        else "share of households below the poverty line",
        "means": {g: {"baseline": impact._num(float(r.iloc[0])), "followup": impact._num(float(r.iloc[1]))}
                  for g, r in means.iterrows()},
        "naive_difference": naive.as_dict(),
        "estimates": [r.as_dict() for r in results],
        "errors": errors,
        "caveats": [
            "an observational comparison: participants were not chosen at random",
            "per-capita income counts the members registered now in both years",
            "missing living conditions are counted as 'no' in the baseline characteristics",
        ],
    }


def evaluate_impact(session, actor: Actor, region: str, treatment: Treatment | str,
                    baseline: int, followup: int, outcome: str = "income_pc",
                    methods: list[str] | tuple = METHODS, trim: str = "minmax",
                    neighbours: int = 1, caliper: float | None = None,
                    cluster: str = "household", line: str = "cn_rural") -> dict:
    """The effect of a program or help measure on a region's households (scope-checked
    and audited through ``build_panel``)."""
    if isinstance(treatment, str):
        treatment = Treatment.parse(treatment)
    _check(outcome, list(methods), cluster, trim)
    if neighbours < 1 or neighbours > 20:
        raise InvalidInput("neighbours must be between 1 and 20", field="neighbours")
    panel = build_panel(session, actor, region, treatment, baseline, followup, line)
    return {"region": region, **estimate(panel, outcome, methods, trim, neighbours, caliper,
                                         cluster)}


SHORT = {"difference in means": "naive (difference in means)",
         "difference in differences": "DiD", "propensity-score matching": "PSM",
         "inverse-probability weighting": "IPW"}


def table_rows(answer: dict) -> list[list[str]]:
    """The estimates as rows of text, for the CLI."""
    rows = []
    for e in [answer["naive_difference"]] + answer["estimates"]:
        low, high = e["ci95"]
        rows.append([SHORT.get(e["method"].split(" (")[0], e["method"]), f"{e['estimate']:,.2f}", f"{e['se']:,.2f}",
                     f"[{low:,.2f}, {high:,.2f}]", f"{e['n_treated']:,}", f"{e['n_control']:,}"])
    return rows


def balance_frame(estimate: dict) -> pd.DataFrame:
    return pd.DataFrame(estimate.get("balance") or [])
