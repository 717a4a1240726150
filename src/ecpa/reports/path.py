"""The path report (seed 000 §IV, Figure 1) for a county or province (or one farming
program in it) and a year: income gained through the four channels of the
income-increase path (industry, entrepreneurship, employment, financial) as the ledger
traced it, the savings of the multidimensional path (education, health, ecology,
consumption), the multidimensional indicators' change from the year before, and the
households lifted out of poverty and returned to it."""

from __future__ import annotations

import io
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..ledger.models import (
    INCOME_CHANNELS,
    Account,
    AccountKind,
    Channel,
    Posting,
    Transaction,
)
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..regions.codes import scope_prefix
from ..regions.models import Region
from ..registry.models import Household, Status, StatusEvent

READERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.ANALYST)
MULTIDIMENSIONAL = (Channel.EDUCATION, Channel.HEALTH, Channel.ECOLOGY, Channel.CONSUMPTION)


def _channels(session: Session, prefix: str, year: int, program_id: int | None) -> dict:
    q = (select(Posting.channel, func.sum(-Posting.amount_fen),
                func.count(func.distinct(Posting.household_id)))
         .join(Transaction, Transaction.id == Posting.transaction_id)
         .join(Account, Account.id == Posting.account_id)
         .join(Household, Household.id == Posting.household_id)
         .where(Posting.channel.is_not(None), Account.kind == AccountKind.HOUSEHOLD,
                Transaction.business_date >= date(year, 1, 1),
                Transaction.business_date <= date(year, 12, 31),
                Household.village_code.startswith(prefix))
         .group_by(Posting.channel))
    if program_id is not None:
        q = q.where(Transaction.key.like(f"farm:{program_id}:%"))
    found = {c: (int(fen), int(n)) for c, fen, n in session.execute(q)}
    return {c.value: {"fen": found.get(c, (0, 0))[0], "households": found.get(c, (0, 0))[1]}
            for c in Channel}


def _flows(session: Session, prefix: str, year: int) -> dict:
    rows = session.execute(
        select(StatusEvent.status, func.count(func.distinct(StatusEvent.household_id)))
        .join(Household, Household.id == StatusEvent.household_id)
        .where(Household.village_code.startswith(prefix),
               StatusEvent.event_date >= date(year, 1, 1), StatusEvent.event_date <= date(year, 12, 31))
        .group_by(StatusEvent.status)).all()
    got = {s: int(n) for s, n in rows}
    return {"lifted_out": got.get(Status.EXITED, 0), "returned": got.get(Status.RETURNED, 0),
            "identified": got.get(Status.IDENTIFIED, 0), "entered_monitoring": got.get(Status.MONITORED, 0)}


def _mpi(session: Session, actor: Actor, region: str, year: int) -> dict | None:
    """H, A, M0 and each indicator's censored headcount for the region, this year and the
    year before (None where the register holds no data for a year)."""
    from ..measure.service import assess_region

    def total(y: int):
        try:
            result, _ = assess_region(session, actor, region, y)
        except InvalidInput:
            return None
        m = result.mpi
        row = m[(m["level"] == "total") & m["subgroup"].isna()].sort_values("k").iloc[0]
        return row

    now, before = total(year), total(year - 1)
    if now is None:
        return None
    indicators = sorted(c[len("censored_"):] for c in now.index if c.startswith("censored_"))
    out = {"k": str(now["k"]), "H": float(now["H"]), "A": float(now["A"]), "M0": float(now["M0"]),
           "drivers": now.get("drivers"), "indicators": []}
    if before is not None:
        out.update({"H_before": float(before["H"]), "A_before": float(before["A"]),
                    "M0_before": float(before["M0"])})
    for ind in indicators:
        item = {"indicator": ind, "censored": float(now[f"censored_{ind}"])}
        if before is not None and f"censored_{ind}" in before.index:
            item["censored_before"] = float(before[f"censored_{ind}"])
            item["change"] = item["censored"] - item["censored_before"]
        out["indicators"].append(item)
    return out


def path_report(session: Session, actor: Actor, region: str, year: int,
                program_id: int | None = None, with_mpi: bool = True) -> dict:
    require_role(actor, *READERS)
    require_region(actor, region)
    place = session.get(Region, region)
    if place is None:
        raise InvalidInput(f"no region {region}", field="region")
    prefix = scope_prefix(region)
    channels = _channels(session, prefix, year, program_id)
    income = {c.value: channels[c.value] for c in INCOME_CHANNELS}
    multi = {c.value: channels[c.value] for c in MULTIDIMENSIONAL}
    report = {"region": region, "name": place.name, "year": year, "program_id": program_id,
              "income_path": income, "income_total_fen": sum(v["fen"] for v in income.values()),
              "multidimensional_path": multi,
              "savings_total_fen": sum(v["fen"] for v in multi.values()),
              "households": _flows(session, prefix, year),
              "mpi": _mpi(session, actor, region, year) if with_mpi else None}
    audit(session, actor, "path_report", "region", None, {"region": region, "year": year})
    return report


from ..money import yuan as _yuan  # noqa: E402


CHANNEL_ZH = {"industry": "产业", "entrepreneurship": "创业", "employment": "就业", "financial": "金融",
              "education": "教育", "health": "健康", "ecology": "生态", "consumption": "消费"}


def to_xlsx(report: dict) -> bytes:
    import xlsxwriter
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True})
    money = wb.add_format({"num_format": "#,##0.00"})
    ws = wb.add_worksheet("path")
    ws.write_row(0, 0, [f"{report['name']} {report['year']} 扶贫路径 / path report"], bold)
    r = 2
    for title, part in (("收入增长路径 income-increase path", report["income_path"]),
                        ("多维减贫路径 multidimensional path", report["multidimensional_path"])):
        ws.write_row(r, 0, [title, "yuan", "households"], bold)
        r += 1
        for channel, v in part.items():
            ws.write(r, 0, f"{CHANNEL_ZH[channel]} {channel}")
            ws.write_number(r, 1, v["fen"] / 100, money)
            ws.write_number(r, 2, v["households"])
            r += 1
        r += 1
    ws.write_row(r, 0, ["户数变化 households", "count"], bold)
    for k, v in report["households"].items():
        r += 1
        ws.write(r, 0, k)
        ws.write_number(r, 1, v)
    if report["mpi"]:
        r += 2
        m = report["mpi"]
        ws.write_row(r, 0, ["MPI", "now", "year before"], bold)
        for x in ("H", "A", "M0"):
            r += 1
            ws.write_row(r, 0, [x, m[x], m.get(f"{x}_before", "")])
        r += 2
        ws.write_row(r, 0, ["indicator", "censored headcount", "year before", "change"], bold)
        for ind in m["indicators"]:
            r += 1
            ws.write_row(r, 0, [ind["indicator"], ind["censored"], ind.get("censored_before", ""),
                                ind.get("change", "")])
    ws.set_column(0, 0, 36)
    ws.set_column(1, 3, 16)
    wb.close()
    return buf.getvalue()


def to_pdf(report: dict) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import (
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    h = ParagraphStyle("h", fontName="STSong-Light", fontSize=15, leading=20)
    p = ParagraphStyle("p", fontName="STSong-Light", fontSize=9, leading=12)
    style = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                        ("FONTNAME", (0, 0), (-1, -1), "STSong-Light"), ("FONTSIZE", (0, 0), (-1, -1), 9)])
    story = [Paragraph(f"{report['name']} {report['year']} 年电商扶贫路径报告 / path report", h), Spacer(1, 8)]
    for title, part in (("收入增长路径 Income-increase path", report["income_path"]),
                        ("多维减贫路径 Multidimensional path", report["multidimensional_path"])):
        story.append(Paragraph(title, p))
        rows = [["渠道 channel", "金额 yuan", "户数 households"]] + [
            [f"{CHANNEL_ZH[c]} {c}", _yuan(v["fen"]), str(v["households"])] for c, v in part.items()]
        t = Table(rows, colWidths=[170, 120, 100])
        t.setStyle(style)
        story += [t, Spacer(1, 8)]
    hh = report["households"]
    story.append(Paragraph(f"脱贫 lifted out: {hh['lifted_out']}　返贫 returned: {hh['returned']}　"
                           f"新识别 identified: {hh['identified']}　纳入监测 monitored: {hh['entered_monitoring']}", p))
    if report["mpi"]:
        m = report["mpi"]
        rows = [["", "今年 now", "上年 year before"]] + [
            [x, f"{m[x]:.4f}", f"{m[f'{x}_before']:.4f}" if f"{x}_before" in m else "–"] for x in ("H", "A", "M0")]
        rows += [[i["indicator"], f"{i['censored']:.4f}",
                  f"{i['censored_before']:.4f}" if "censored_before" in i else "–"] for i in m["indicators"]]
        t = Table(rows, colWidths=[170, 120, 100])
        t.setStyle(style)
        story += [Spacer(1, 8), Paragraph("多维贫困指数 Multidimensional poverty index", p), t]
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, title=f"{report['name']} path report").build(story)
    return buf.getvalue()
