"""`ecpa case …`: open a case, take its steps, review objections, print the notice.
The operator at the machine acts as a named user (--as), so that the same rules —
role, region level, maker-checker — apply as on the web."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..cli import _fail, _household_id, console
from ..errors import EcpaError

case_app = typer.Typer(help="Targeting cases: identification, exit, monitoring, data changes.",
                       no_args_is_help=True)
AS = typer.Option("--as", help="the user who acts (role and region apply)")


def _user(s, username: str):
    from sqlalchemy import select

    from ..errors import NotFound
    from ..people.models import User
    from ..people.service import actor_of
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}", field="--as")
    return actor_of(user)


@case_app.command("open")
def case_open(kind: str, household: str, user: Annotated[str, AS],
              reason: Annotated[str, typer.Option()],
              category: Annotated[Optional[str], typer.Option(help="monitoring_entry: the category")] = None) -> None:
    """Open a case for a household (by its number); the first step is taken by --as."""
    from ..db import session_scope
    from .service import open_case
    try:
        with session_scope() as s:
            case = open_case(s, _user(s, user), kind, _household_id(s, household), reason,
                             {"category": category} if category else {})
            console.print(f"case {case.id} opened: {case.kind.value}, {case.state.value}")
    except EcpaError as exc:
        _fail(exc)


@case_app.command("step")
def case_step(case: int, user: Annotated[str, AS],
              expect: Annotated[Optional[str], typer.Option(help="the step you mean to take")] = None,
              comment: str = "") -> None:
    """Take the case's next step."""
    from ..db import session_scope
    from .service import current_step, take_step
    try:
        with session_scope() as s:
            c = take_step(s, _user(s, user), case, comment, expected=expect)
            nxt = current_step(c)
            console.print(f"case {case}: {c.state.value}" + (f", next: {nxt.key}" if nxt else ""))
    except EcpaError as exc:
        _fail(exc)


@case_app.command("show")
def case_show(case: int) -> None:
    from ..db import session_scope
    from .service import case_view, get_case
    try:
        with session_scope() as s:
            console.print_json(json.dumps(case_view(s, get_case(s, case)), ensure_ascii=False))
    except EcpaError as exc:
        _fail(exc)


@case_app.command("list")
def case_list(user: Annotated[str, AS], region: Annotated[Optional[str], typer.Option()] = None) -> None:
    """The live cases of a region and whether --as may take their next step."""
    from ..db import session_scope
    from .service import queue
    try:
        with session_scope() as s:
            rows = queue(s, _user(s, user), region)
    except EcpaError as exc:
        _fail(exc)
    t = Table("case", "kind", "household", "state", "next step", "yours", "colour")
    for r in rows:
        t.add_row(str(r["id"]), r["kind"], r["household_number"], r["state"],
                  r["current_step"] or "-", "yes" if r["you_may_act"] else "", r["colour"])
    console.print(t)


@case_app.command("propose")
def case_propose(region: str, user: Annotated[str, AS], year: Annotated[int, typer.Option()]) -> None:
    """Measure the region and propose cases (monitoring for the flagged, exit for those
    measured out of poverty)."""
    from ..db import session_scope
    from .service import propose_from_assessment
    try:
        with session_scope() as s:
            made = propose_from_assessment(s, _user(s, user), region, year)
    except EcpaError as exc:
        _fail(exc)
    console.print(f"proposed: {made['monitoring_entry']} monitoring, {made['exit']} exit; "
                  f"{made['skipped']} already under way")


@case_app.command("notice")
def case_notice(village: str, pdf: Annotated[Optional[Path], typer.Option(help="write the printable notice here")] = None) -> None:
    """A village's public notice (and a PDF for the notice board)."""
    from ..db import session_scope
    from .notice import notice_board, notice_pdf
    try:
        with session_scope() as s:
            board = notice_board(s, village)
    except EcpaError as exc:
        _fail(exc)
    for r in board["cases"]:
        console.print(f"{r['case']}  {r['title_zh']}  {r['head']}  {r['start']}–{r['end']}  {r['reason']}")
    if pdf:
        pdf.write_bytes(notice_pdf(board))
        console.print(f"wrote {pdf}")
