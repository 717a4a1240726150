"""Command-line commands of the programs: ``ecpa farm``, ``ecpa loan`` and ``ecpa scenario``.
Thin: each command parses, calls one use-case function and prints."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..cli import _actor, _day, _fail, _household_id, console
from ..errors import EcpaError

farm_app = typer.Typer(help="Contract farming that costs nothing: advance, buy-back, settlement.",
                       no_args_is_help=True)
loan_app = typer.Typer(help="Microloans: products, loans, repayments, arrears, write-off.",
                       no_args_is_help=True)


def _date(value: str, option: str) -> date:
    return _day(value, option, today_if_empty=False)


def _json(data) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


@farm_app.command("create")
def farm_create(
    cooperative_id: Annotated[int, typer.Option(help="the cooperative's organisation id")],
    enterprise_id: Annotated[int, typer.Option(help="the buying enterprise's organisation id")],
    start: Annotated[str, typer.Option(help="first day of the cycle, YYYY-MM-DD")],
    preset: Annotated[str | None, typer.Option(help="running-chickens: seed 000's Wuyi terms")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    product: Annotated[str | None, typer.Option()] = None,
    unit: Annotated[str | None, typer.Option(help="chicken, jin, head …")] = None,
    cycle_days: Annotated[int | None, typer.Option()] = None,
    input_cost_fen: Annotated[int | None, typer.Option(help="inputs advanced per unit")] = None,
    floor_fen: Annotated[int, typer.Option(help="protective floor price per unit")] = 0,
    premium_fen: Annotated[int, typer.Option(help="paid over the market price per unit")] = 0,
    guarantor: Annotated[str, typer.Option(help="government:NAME, cooperative:NAME or enterprise:NAME")] = "government:county poverty fund",
) -> None:
    """Create a program, from the running-chickens preset or from options."""
    from ..db import session_scope
    from .farming import RUNNING_CHICKENS, create_program
    from .models import GuarantorKind
    if preset and preset != "running-chickens":
        raise typer.BadParameter("the only preset is running-chickens", param_hint="--preset")
    terms = dict(RUNNING_CHICKENS) if preset else {}
    if not preset:
        missing = [o for o, v in (("--name", name), ("--product", product), ("--unit", unit),
                                  ("--cycle-days", cycle_days), ("--input-cost-fen", input_cost_fen))
                   if v is None]
        if missing:
            raise typer.BadParameter(f"give {', '.join(missing)} or --preset")
        kind, _, gname = guarantor.partition(":")
        try:
            gkind = GuarantorKind(kind)
        except ValueError:
            raise typer.BadParameter(f"unknown guarantor kind {kind!r}", param_hint="--guarantor") from None
        terms = dict(name=name, product=product, unit=unit, cycle_days=cycle_days,
                     input_cost_per_unit_fen=input_cost_fen, floor_price_fen=floor_fen,
                     premium_fen=premium_fen, grades={"A": 10_000}, guarantor_kind=gkind,
                     guarantor_name=gname or kind)
    try:
        with session_scope() as s:
            p = create_program(s, _actor(), **terms, start_date=_date(start, "--start"),
                               cooperative_id=cooperative_id, enterprise_id=enterprise_id)
            console.print(f"farming program {p.id}: {p.name}, {p.cycle_days} days from {p.start_date}")
    except EcpaError as exc:
        _fail(exc)


@farm_app.command("price")
def farm_price(program: int, on: Annotated[str, typer.Option("--date")], price_fen: int) -> None:
    """Record the market price per unit on a day."""
    from ..db import session_scope
    from .farming import _program, protective_price, record_market_price
    try:
        with session_scope() as s:
            day = _date(on, "--date")
            record_market_price(s, _actor(), program, day, price_fen)
            console.print(f"protective price on {day}: "
                          f"{protective_price(s, _program(s, program), day)} fen per unit")
    except EcpaError as exc:
        _fail(exc)


@farm_app.command("enrol")
def farm_enrol(program: int, household: str, units: int,
               on: Annotated[str, typer.Option("--date")]) -> None:
    """Enrol a household (by its number) and advance its inputs."""
    from ..db import session_scope
    from .farming import enrol
    try:
        with session_scope() as s:
            e = enrol(s, _actor(), program, _household_id(s, household), units, _date(on, "--date"))
            console.print(f"household {household} enrolled with {e.units} units")
    except EcpaError as exc:
        _fail(exc)


@farm_app.command("buy-back")
def farm_buy_back(program: int, household: str, quantity: int, grade: str,
                  key: Annotated[str, typer.Option(help="idempotency key of the delivery")],
                  on: Annotated[str, typer.Option("--date")]) -> None:
    """Buy a delivery back at the protective price."""
    from ..db import session_scope
    from .farming import buy_back
    try:
        with session_scope() as s:
            b = buy_back(s, _actor(), program, _household_id(s, household), key,
                         _date(on, "--date"), quantity, grade)
            console.print(f"{b.quantity} × {b.unit_price_fen} fen = {b.amount_fen} fen")
    except EcpaError as exc:
        _fail(exc)


@farm_app.command("settle")
def farm_settle(program: int, on: Annotated[str, typer.Option("--date")]) -> None:
    """Settle every enrolment (resumable: a re-run pays nobody twice)."""
    from ..db import session_factory
    from .farming import settle
    try:
        lines = settle(session_factory(), _actor(), program, _date(on, "--date"))
    except EcpaError as exc:
        _fail(exc)
    t = Table("household", "bought", "advance", "loan repaid", "guarantee", "paid", "state")
    for x in lines:
        t.add_row(str(x.household_id), str(x.bought_fen), str(x.advance_fen),
                  str(x.loan_repaid_fen), str(x.guarantee_fen), str(x.paid_fen),
                  "already settled" if x.already_settled else "settled now")
    console.print(t)
    console.print(f"{len(lines)} households; paid {sum(x.paid_fen for x in lines)} fen")


@farm_app.command("show")
def farm_show(program: int) -> None:
    from ..db import session_scope
    from .farming import program_summary
    try:
        with session_scope() as s:
            _json(program_summary(s, _actor(), program))
    except EcpaError as exc:
        _fail(exc)


@loan_app.command("product-add")
def loan_product_add(
    name: str,
    lender: Annotated[str, typer.Option(help="the lender's name")],
    rate: Annotated[str, typer.Option(help="nominal yearly rate, e.g. 0.0435")],
    months: Annotated[int, typer.Option()],
    max_principal_fen: Annotated[int, typer.Option()],
    guarantor: Annotated[str, typer.Option(help="government:NAME, cooperative:NAME or enterprise:NAME")],
    method: Annotated[str, typer.Option(help="equal_instalments, equal_principal, interest_only, bullet")] = "equal_instalments",
    penalty_rate: Annotated[str, typer.Option(help="yearly, on overdue amounts")] = "0",
    grace_months: int = 0, fee_fen: int = 0,
    order: Annotated[str, typer.Option(help="what a repayment covers first")] = "penalty,fee,interest,principal",
    prepayment: Annotated[str, typer.Option(
        help="a payment beyond what is due: reduce_principal or advance_instalments")] = "reduce_principal",
    subsidy_bp: Annotated[int, typer.Option(help="share of interest given back, basis points")] = 0,
    guarantee_bp: Annotated[int, typer.Option(help="guarantor's share of a write-off, basis points")] = 0,
) -> None:
    """Add a loan product."""
    from ..db import session_scope
    from .microloans import create_product
    kind, _, gname = guarantor.partition(":")
    try:
        with session_scope() as s:
            p = create_product(s, _actor(), name=name, lender_name=lender, annual_rate=rate,
                               penalty_rate=penalty_rate, months=months, method=method,
                               grace_months=grace_months, fee_fen=fee_fen,
                               max_principal_fen=max_principal_fen,
                               allocation_order=[x.strip() for x in order.split(",")],
                               prepayment=prepayment,
                               interest_subsidy_bp=subsidy_bp, guarantor_kind=kind,
                               guarantor_name=gname or kind, guarantee_bp=guarantee_bp)
            console.print(f"loan product {p.id}: {p.name}")
    except EcpaError as exc:
        _fail(exc)


@loan_app.command("grant")
def loan_grant(product: int, household: str, principal_fen: int,
               on: Annotated[str, typer.Option("--date")],
               purpose: str = "",
               repay_from_program: Annotated[int | None, typer.Option(help="deduct from this farming program's settlement")] = None,
               disburse: Annotated[bool, typer.Option(help="disburse at once")] = False,
               first_due: Annotated[str | None, typer.Option()] = None) -> None:
    """Grant a loan to a household (by its number), and disburse it with --disburse."""
    from ..db import session_scope
    from . import microloans
    try:
        with session_scope() as s:
            day = _date(on, "--date")
            loan = microloans.grant(s, _actor(), product, _household_id(s, household),
                                    principal_fen, day, purpose, repay_from_program)
            if disburse:
                microloans.disburse(s, _actor(), loan.id, day,
                                    _date(first_due, "--first-due") if first_due else None)
            console.print(f"loan {loan.id}: {loan.principal_fen} fen, {loan.status.value}")
    except EcpaError as exc:
        _fail(exc)


@loan_app.command("disburse")
def loan_disburse(loan: int, on: Annotated[str, typer.Option("--date")],
                  first_due: Annotated[str | None, typer.Option()] = None) -> None:
    from ..db import session_scope
    from . import microloans
    try:
        with session_scope() as s:
            microloans.disburse(s, _actor(), loan, _date(on, "--date"),
                                _date(first_due, "--first-due") if first_due else None)
            console.print(f"loan {loan} disbursed")
    except EcpaError as exc:
        _fail(exc)


@loan_app.command("repay")
def loan_repay(loan: int, amount_fen: int, key: Annotated[str, typer.Option(help="idempotency key")],
               on: Annotated[str, typer.Option("--date")]) -> None:
    """Record a repayment; prints how it was allocated."""
    from ..db import session_scope
    from . import microloans
    try:
        with session_scope() as s:
            r = microloans.repay(s, _actor(), loan, key, _date(on, "--date"), amount_fen)
            console.print(f"{r.amount_fen} fen: penalty {r.penalty_fen}, fee {r.fee_fen}, "
                          f"interest {r.interest_fen}, principal {r.principal_fen}")
    except EcpaError as exc:
        _fail(exc)


@loan_app.command("show")
def loan_show(loan: int, as_of: Annotated[str, typer.Option("--as-of")]) -> None:
    """A loan on a business date: instalments, what is due, days past due."""
    from ..db import session_scope
    from . import microloans
    try:
        with session_scope() as s:
            _json(microloans.show(s, _actor(), loan, _date(as_of, "--as-of")))
    except EcpaError as exc:
        _fail(exc)


@loan_app.command("write-off")
def loan_write_off(loan: int, on: Annotated[str, typer.Option("--date")],
                   reason: Annotated[str, typer.Option()]) -> None:
    from ..db import session_scope
    from . import microloans
    try:
        with session_scope() as s:
            microloans.write_off(s, _actor(), loan, _date(on, "--date"), reason)
            console.print(f"loan {loan} written off")
    except EcpaError as exc:
        _fail(exc)


@loan_app.command("portfolio")
def loan_portfolio(as_of: Annotated[str, typer.Option("--as-of")],
                   region: Annotated[str | None, typer.Option()] = None,
                   product: Annotated[int | None, typer.Option()] = None) -> None:
    """Portfolio at risk (PAR 1/30/90) and ageing buckets on a business date."""
    from ..db import session_scope
    from . import microloans
    try:
        with session_scope() as s:
            p = microloans.portfolio(s, _actor(), _date(as_of, "--as-of"), region, product)
    except EcpaError as exc:
        _fail(exc)
    t = Table("bucket", "loans", "principal outstanding (fen)")
    for name, b in p["buckets"].items():
        t.add_row(name, str(b["loans"]), str(b["principal_fen"]))
    console.print(t)
    console.print(f"PAR1 {p['par1']}  PAR30 {p['par30']}  PAR90 {p['par90']}  "
                  f"written off {p['written_off_fen']} fen  closed {p['closed_loans']}")


def scenario(
    name: Annotated[str, typer.Argument(help="chickens (Wuyi), farming (Fugou) or loans (Yanling)")],
    households: Annotated[int | None, typer.Option(help="default: the paper's or the issue's number")] = None,
    seed: int = 1,
    rows: Annotated[int, typer.Option(help="households to print (all with --rows 0)")] = 15,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="write every household's row here")] = None,
) -> None:
    """Replay a program of seed 000 §III.A with the paper's parameters on synthetic
    households of its county, in a throwaway database; print per household and in total
    what the paper reports, with the assumptions."""
    from .scenario import SCENARIOS, run
    if name not in SCENARIOS:
        raise typer.BadParameter(f"choose one of {', '.join(SCENARIOS)}", param_hint="NAME")
    r = run(name, households, seed)
    console.print(f"[bold]{r.title}[/bold] — {r.county}, after {r.source}")
    console.print("assumptions:")
    for a in r.assumptions:
        console.print(f"  • {a}")
    t = Table(*r.columns)
    shown = r.rows if rows == 0 else r.rows[:rows]
    for row in shown:
        t.add_row(*[str(row[c]) for c in r.columns])
    console.print(t)
    if len(shown) < len(r.rows):
        console.print(f"… {len(r.rows) - len(shown)} more households (--rows 0 or --csv for all)")
    totals = Table("total", "")
    for k, v in r.totals.items():
        totals.add_row(k, v)
    console.print(totals)
    cmp_ = Table("", "the paper", "this run")
    for what, paper, ours in r.comparison:
        cmp_.add_row(what, paper, ours)
    console.print(cmp_)
    if csv_out:
        with open(csv_out, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, r.columns)
            w.writeheader()
            w.writerows(r.rows)
        console.print(f"wrote {len(r.rows)} rows to {csv_out}")

