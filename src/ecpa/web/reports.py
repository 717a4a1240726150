"""The path report as a web page, with its Excel and PDF downloads."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..api.deps import SessionDep
from ..reports import path
from .pages import signin_required
from .render import render
from .security import current_actor

router = APIRouter(include_in_schema=False)


def _latest_year(session, region: str) -> int:
    """The latest year the register holds incomes for in the region (last year if none)."""
    from sqlalchemy import func, select

    from ..regions.codes import scope_prefix
    from ..registry.models import Household, Income
    year = session.scalar(select(func.max(Income.year)).join(Household, Household.id == Income.household_id)
                          .where(Household.village_code.startswith(scope_prefix(region))))
    return year or date.today().year - 1


@router.get("/reports/path")
def path_page(request: Request, session: SessionDep, region: str | None = None,
              year: int | None = None, fmt: str = "html") -> Response:
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    region = region or actor.region_code or ""
    year = year or _latest_year(session, region)
    report = path.path_report(session, actor, region, year)
    if fmt == "xlsx":
        from ..reports.api import XLSX
        return Response(path.to_xlsx(report), media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="path-{region}-{year}.xlsx"'})
    if fmt == "pdf":
        return Response(path.to_pdf(report), media_type="application/pdf")
    top = max([v["fen"] for v in report["income_path"].values()] + [1])
    return render(request, "report_path.html", actor=actor, report=report, top=top,
                  zh=path.CHANNEL_ZH)


@router.get("/reports/impact")
def impact_page(request: Request, session: SessionDep, region: str | None = None,
                program_id: int | None = None, measure_kind: str | None = None,
                baseline: int | None = None, followup: int | None = None,
                outcome: str = "income_pc", fmt: str = "html") -> Response:
    """Did it work?  The impact of a program or help measure, with the comparison's
    balance and the caveats; as a page, Excel or PDF."""
    from ..evaluate.service import evaluate_impact
    from ..reports import impact
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    region = region or actor.region_code or ""
    answer = None
    if (program_id or measure_kind) and baseline and followup:
        treatment = f"program:{program_id}" if program_id else f"measure:{measure_kind}"
        answer = evaluate_impact(session, actor, region, treatment, baseline, followup, outcome)
        title = f"{region} · {treatment} · {baseline}→{followup}"
        if fmt == "xlsx":
            from ..reports.api import XLSX
            return Response(impact.to_xlsx(answer), media_type=XLSX, headers={
                "Content-Disposition": 'attachment; filename="impact.xlsx"'})
        if fmt == "pdf":
            return Response(impact.to_pdf(answer, title), media_type="application/pdf")
    return render(request, "report_impact.html", actor=actor, answer=answer, region=region,
                  program_id=program_id, measure_kind=measure_kind, baseline=baseline,
                  followup=followup, outcome=outcome,
                  rows=impact.rows(answer) if answer else [],
                  balance=impact.balance(answer) if answer else [], query=request.url.query)
