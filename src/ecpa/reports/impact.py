"""The impact evaluation's answer as files: Excel (estimates, balance, overlap, caveats)
and PDF, for a province's poverty office to file."""

from __future__ import annotations

import io

NAMES = {"difference in means": "naive difference", "difference in differences": "DiD",
         "propensity-score matching": "PSM", "inverse-probability weighting": "IPW"}


def rows(answer: dict) -> list[dict]:
    out = []
    for e in [answer["naive_difference"]] + answer["estimates"]:
        name = e["method"].split(" (")[0]
        out.append({"method": NAMES.get(name, name), "full": e["method"], "estimate": e["estimate"],
                    "se": e["se"], "low": e["ci95"][0], "high": e["ci95"][1],
                    "treated": e["n_treated"], "control": e["n_control"],
                    "se_method": e.get("se_method", ""), "caveats": e.get("caveats", [])})
    return out


def balance(answer: dict) -> list[dict]:
    """Every adjusted estimate's balance rows, with the method named."""
    out = []
    for e in answer["estimates"]:
        for b in e.get("balance") or []:
            out.append({"method": NAMES.get(e["method"].split(" (")[0], e["method"]), **b})
    return out


def _cell(v):
    return "" if v is None else str(v) if isinstance(v, (list, dict)) else v


def to_xlsx(answer: dict) -> bytes:
    import xlsxwriter
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True})
    ws = wb.add_worksheet("estimates")
    ws.write_row(0, 0, ["region", answer.get("region", ""), "outcome", answer["outcome"],
                        answer.get("outcome_unit", "")], bold)
    ws.write_row(2, 0, ["method", "estimate", "SE", "95% CI low", "95% CI high", "treated",
                        "comparison", "SE method"], bold)
    for i, r in enumerate(rows(answer), start=3):
        ws.write_row(i, 0, [r["full"], r["estimate"], r["se"], r["low"], r["high"], r["treated"],
                            r["control"], r["se_method"]])
    line = i + 2
    ws.write(line, 0, "caveats", bold)
    for c in answer.get("caveats", []):
        line += 1
        ws.write(line, 0, c)
    ws.set_column(0, 0, 48)
    bal = balance(answer)
    if bal:
        sheet = wb.add_worksheet("balance")
        keys = list(dict.fromkeys(k for b in bal for k in b))  # methods report different columns
        sheet.write_row(0, 0, keys, bold)
        for i, b in enumerate(bal, start=1):
            sheet.write_row(i, 0, [_cell(b.get(k)) for k in keys])
    overlap = [e for e in answer["estimates"] if e.get("overlap")]
    if overlap:
        sheet = wb.add_worksheet("overlap")
        r = 0
        for e in overlap:
            sheet.write(r, 0, e["method"], bold)
            for k, v in e["overlap"].items():
                r += 1
                sheet.write_row(r, 0, [k, v if not isinstance(v, (list, dict)) else str(v)])
            r += 2
        sheet.set_column(0, 0, 40)
    wb.close()
    return buf.getvalue()


def to_pdf(answer: dict, title: str) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    h = ParagraphStyle("h", fontName="STSong-Light", fontSize=14, leading=19)
    p = ParagraphStyle("p", fontName="STSong-Light", fontSize=8.5, leading=11)
    style = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                        ("FONTNAME", (0, 0), (-1, -1), "STSong-Light"), ("FONTSIZE", (0, 0), (-1, -1), 8.5)])

    def fmt(x):
        return "–" if x is None else f"{x:,.2f}"

    table = [["方法 method", "估计 estimate", "SE", "95% CI", "处理 treated", "对照 comparison"]]
    table += [[r["method"], fmt(r["estimate"]), fmt(r["se"]), f"[{fmt(r['low'])}, {fmt(r['high'])}]",
               str(r["treated"]), str(r["control"])] for r in rows(answer)]
    t = Table(table, colWidths=[95, 75, 60, 130, 60, 70])
    t.setStyle(style)
    story = [Paragraph(title, h), Spacer(1, 6),
             Paragraph(f"结果 outcome: {answer['outcome']} ({answer.get('outcome_unit', '')})", p),
             Spacer(1, 6), t, Spacer(1, 8)]
    bal = balance(answer)
    if bal:
        keys = ["method", "covariate", "smd_before", "smd_after"]
        bt = Table([keys] + [[(f"{b.get(k):.3f}" if isinstance(b.get(k), float) else str(b.get(k, "")))
                              for k in keys] for b in bal], repeatRows=1)
        bt.setStyle(style)
        story += [Paragraph("协变量平衡 covariate balance (standardised mean differences)", p), bt, Spacer(1, 8)]
    for r in rows(answer):
        if r["se_method"]:
            story.append(Paragraph(f"{r['method']}: {r['se_method']}", p))
    story.append(Spacer(1, 6))
    for c in answer.get("caveats", []):
        story.append(Paragraph("• " + c, p))
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, title=title).build(story)
    return buf.getvalue()
