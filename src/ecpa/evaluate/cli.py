"""``ecpa evaluate``: impact evaluation from the command line."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import EcpaError

evaluate_app = typer.Typer(help="Evaluation: did a program raise incomes?", no_args_is_help=True)
console = Console()


@evaluate_app.command("impact")
def impact(
    region: Annotated[str, typer.Option(help="county code (or a township, a village)")],
    baseline: Annotated[int, typer.Option(help="year before the program")],
    followup: Annotated[int, typer.Option(help="year after it")],
    program: Annotated[int | None, typer.Option(help="farming program id")] = None,
    measure: Annotated[str | None, typer.Option(help="or a help-measure kind (e.g. ecommerce)")] = None,
    outcome: Annotated[str, typer.Option(help="income_pc or poor")] = "income_pc",
    method: Annotated[list[str] | None, typer.Option(help="did, psm, ipw (repeat; default all)")] = None,
    trim: Annotated[str, typer.Option(help="common support: minmax, none, or a in [0, 0.5)")] = "minmax",
    neighbours: Annotated[int, typer.Option(help="matches per treated household")] = 1,
    cluster: Annotated[str, typer.Option(help="household or village")] = "household",
    balance: Annotated[bool, typer.Option(help="print the covariate balance tables")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole answer as JSON")] = False,
) -> None:
    """The effect of a program or help measure on participants, against comparable
    non-participants of the region."""
    from ..db import session_scope
    from ..people.access import system_actor
    from . import service
    from .panel import Treatment

    try:
        treatment = Treatment(program_id=program, measure_kind=measure)
        with session_scope() as s:
            answer = service.evaluate_impact(
                s, system_actor(f"cli:{getpass.getuser()}"), region, treatment, baseline,
                followup, outcome, method or list(service.METHODS), trim, neighbours,
                None, cluster)
    except EcpaError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=1))
        return
    x = answer["excluded"]
    console.print(f"Effect of {answer['treatment']} on {answer['outcome']} "
                  f"({answer['outcome_unit']}) in {region}, {baseline} -> {followup}: "
                  f"{answer['treated']:,} participants, {answer['comparison']:,} comparison "
                  f"households; left out: {x['treated_by_baseline']:,} already taking part in "
                  f"{baseline}, {x['missing_income']:,} without incomes in both years, "
                  f"{x['no_members']:,} without members")
    t = Table()
    for col in ("method", "estimate", "SE", "95% CI", "treated", "controls"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for row in service.table_rows(answer):
        t.add_row(*row)
    console.print(t)
    for e in answer["estimates"]:
        console.print(f"[bold]{e['method']}[/bold]: SE {e['se_method']}")
        if e.get("overlap"):
            o = e["overlap"]
            console.print(f"  overlap: treated scores {o['treated']['p0']:.3f}..{o['treated']['p100']:.3f}, "
                          f"controls {o['control']['p0']:.3f}..{o['control']['p100']:.3f}; "
                          f"{o['treated_outside_control_range']} treated outside the controls' "
                          f"range; {o['rule']}; dropped {o['dropped_treated']} treated, "
                          f"{o['dropped_control']} controls")
        if e.get("balance"):
            worst = max(e["balance"], key=lambda r: abs(r.get("smd_before") or 0))
            after = max(abs(r.get("smd_after") or 0) for r in e["balance"])
            console.print(f"  balance: largest |SMD| before {abs(worst['smd_before']):.3f} "
                          f"({worst['covariate']}), after {after:.3f}")
            if balance:
                b = Table("covariate", "SMD before", "SMD after")
                for r in e["balance"]:
                    b.add_row(r["covariate"], f"{r['smd_before']:+.3f}", f"{r['smd_after']:+.3f}")
                console.print(b)
        for c in e["caveats"]:
            console.print(f"  - {c}")
    for m, msg in answer["errors"].items():
        console.print(f"[yellow]{m} not estimated:[/yellow] {msg}")
