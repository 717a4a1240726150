"""The public notice board of a village: the cases on notice, as a small HTML page and a
printable PDF for the village notice board (公示栏).  Names are masked (王*山)."""

from __future__ import annotations

import html
import io
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..privacy import mask_name
from ..regions.models import Region
from ..registry.models import Household, Member, Relation
from .models import Case, CaseState
from .service import procedures


def notice_board(session: Session, village_code: str, today: date | None = None) -> dict:
    today = today or date.today()
    village = session.get(Region, village_code)
    if village is None or len(village_code) != 12:
        raise InvalidInput(f"no village {village_code}", field="village_code")
    rows = []
    cases = session.scalars(select(Case).where(
        Case.village_code == village_code,
        Case.state.in_([CaseState.IN_NOTICE, CaseState.OBJECTED]),
        Case.notice_end >= today).order_by(Case.id))
    for case in cases:
        household = session.get(Household, case.household_id)
        head = session.scalar(select(Member.name).where(Member.household_id == household.id,
                                                        Member.relation == Relation.HEAD))
        proc = procedures()[case.kind]
        rows.append({"case": case.id, "kind": case.kind.value, "title": proc.title,
                     "title_zh": proc.title_zh, "head": mask_name(head or ""),
                     "address": household.address, "reason": case.reason,
                     "start": case.notice_start.isoformat(), "end": case.notice_end.isoformat(),
                     "objected": case.state is CaseState.OBJECTED})
    return {"village_code": village_code, "village": village.name, "date": today.isoformat(),
            "cases": rows}


def notice_html(board: dict) -> str:
    e = html.escape
    items = "".join(
        f"<tr><td>{r['case']}</td><td>{e(r['title_zh'])}<br><small>{e(r['title'])}</small></td>"
        f"<td>{e(r['head'])}</td><td>{e(r['address'])}</td><td>{e(r['reason'])}</td>"
        f"<td>{r['start']} – {r['end']}{' (异议审查中 objection under review)' if r['objected'] else ''}</td></tr>"
        for r in board["cases"]) or '<tr><td colspan="6">暂无公示 / nothing on notice</td></tr>'
    return (
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{e(board['village'])} 公示 / public notice</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;width:100%}"
        "td,th{border:1px solid #999;padding:.3em;font-size:14px;vertical-align:top}</style>"
        f"<h1>{e(board['village'])} 公示 / Public notice</h1><p>{board['date']}</p>"
        "<table><tr><th>编号 No.</th><th>事项 Matter</th><th>户主 Head</th><th>地址 Address</th>"
        f"<th>事由 Reason</th><th>公示期 Notice period</th></tr>{items}</table>"
        "<p>如有异议，请在公示期内向村委会、驻村工作队或乡镇反映，或在本页提交。"
        " Objections may be raised during the notice period with the village committee, "
        "the township, or through ECPA (POST /api/cases/{No.}/objections).</p></html>")


def notice_pdf(board: dict) -> bytes:
    """An A4 sheet for the notice board, in Chinese and English."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    # A CID font every PDF reader has for Chinese: nothing to embed, a small file.
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    title = ParagraphStyle("t", fontName="STSong-Light", fontSize=16, leading=22)
    body = ParagraphStyle("b", fontName="STSong-Light", fontSize=9, leading=12)
    e = html.escape
    data = [[Paragraph(x, body) for x in ("编号", "事项", "户主", "地址", "事由", "公示期")]]
    for r in board["cases"]:
        data.append([Paragraph(e(str(v)), body) for v in (
            r["case"], r["title_zh"], r["head"], r["address"], r["reason"],
            f"{r['start']} 至 {r['end']}" + ("（异议审查中）" if r["objected"] else ""))])
    table = Table(data, colWidths=[30, 90, 50, 90, 150, 90], repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=f"{board['village']} 公示",
                            leftMargin=36, rightMargin=36, topMargin=36, bottomMargin=36)
    doc.build([Paragraph(f"{e(board['village'])} 公示", title),
               Paragraph(f"日期：{board['date']}　Public notice of {len(board['cases'])} case(s)", body),
               Spacer(1, 8), table, Spacer(1, 12),
               Paragraph("如有异议，请在公示期内向村委会或乡镇人民政府反映。"
                         "Objections may be raised with the village committee or the township "
                         "during the notice period.", body)])
    return out.getvalue()
