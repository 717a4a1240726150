"""HTTP routes of the reports (JSON, Excel, PDF)."""

from __future__ import annotations

from fastapi.responses import Response

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import path

router = ApiRouter(prefix="/api/reports", tags=["evaluate"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/path")
def path_report(region: str, year: int, session: SessionDep, actor: ActorDep,
                program_id: int | None = None) -> dict:
    """Seed 000's two paths for a county or province and year: income by channel, savings
    of the multidimensional path, the MPI's change, households lifted out and returned."""
    return path.path_report(session, actor, region, year, program_id)


@router.get("/path.xlsx")
def path_xlsx(region: str, year: int, session: SessionDep, actor: ActorDep,
              program_id: int | None = None) -> Response:
    report = path.path_report(session, actor, region, year, program_id)
    return Response(path.to_xlsx(report), media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="path-{region}-{year}.xlsx"'})


@router.get("/path.pdf")
def path_pdf(region: str, year: int, session: SessionDep, actor: ActorDep,
             program_id: int | None = None) -> Response:
    report = path.path_report(session, actor, region, year, program_id)
    return Response(path.to_pdf(report), media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="path-{region}-{year}.pdf"'})
