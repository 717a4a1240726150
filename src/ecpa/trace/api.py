"""HTTP routes of traceability: ``/api/trace`` for the people who record batches and their
events, and the public batch page ``/trace/01/{gtin}/10/{lot}`` (a GS1 Digital Link path)
with its QR code, which needs no sign-in."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from decimal import Decimal
from html import escape
from typing import Annotated, Any

from fastapi import Body, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from ..errors import InvalidInput
from . import service
from .models import BatchKind, CertificateKind

router = ApiRouter(prefix="/api/trace", tags=["trace"])
public_router = ApiRouter(prefix="/trace", tags=["trace"])

LD_JSON = "application/ld+json"


class BatchIn(BaseModel):
    product_id: int
    sku_id: int | None = None
    gtin: str = Field(description="GTIN-8/12/13/14; stored as GTIN-14, check digit checked")
    lot: str = Field(min_length=1, max_length=20)
    origin_code: str = Field(min_length=6, max_length=12, description="origin village (region code)")
    household_ids: list[int] = Field(default_factory=list, description="producing households")
    cooperative_id: int | None = None
    kind: BatchKind = BatchKind.HARVEST
    produced_on: date = Field(description="harvest or slaughter date")
    quantity: Decimal = Field(gt=0, max_digits=14, decimal_places=3)
    uom: str = Field("KGM", description="UN/ECE Rec. 20 unit code: KGM, TNE, H87 …")


class CertificateIn(BaseModel):
    batch_id: int | None = None
    seller_id: int | None = None
    kind: CertificateKind
    number: str = Field(min_length=1, max_length=64)
    issuer: str = Field(min_length=1, max_length=200)
    valid_from: date
    valid_to: date


class SimpleEventIn(BaseModel):
    """One step of the chain in plain form; ECPA writes the EPCIS event."""

    step: str = Field(description="commissioning, packing, processing, shipping or receiving")
    event_time: datetime = Field(description="with its offset; without one, China time (+08:00)")
    read_point: str | None = Field(None, description="GLN, SGLN URN or Digital Link /414/ URI")
    biz_location: str | None = None
    quantity: Decimal | None = Field(None, gt=0)
    container_sscc: str | None = Field(None, description="packing: the case or pallet's SSCC")
    output_batch_id: int | None = Field(None, description="processing: the batch made")
    output_quantity: Decimal | None = Field(None, gt=0)


class CorrectIn(BaseModel):
    event_id: str
    reason: str = "incorrect_data"
    corrective: dict[str, Any] | None = Field(
        None, description="the corrected event: EPCIS JSON or the simple form")


def _batch_out(session, batch) -> dict:
    return {"id": batch.id, "product_id": batch.product_id, "sku_id": batch.sku_id,
            "gtin": batch.gtin, "lot": batch.lot, "origin_code": batch.origin_code,
            "cooperative_id": batch.cooperative_id, "kind": batch.kind.value,
            "produced_on": batch.produced_on.isoformat(),
            "quantity": f"{batch.quantity.normalize():f}", "uom": batch.uom,
            "uri": service.batch_uri(batch), "public_page": _page_path(batch.gtin, batch.lot),
            "certificates": service.certificates(session, batch)}


def _page_path(gtin: str, lot: str) -> str:
    return f"/trace/01/{gtin}/10/{lot}"


def _as_event(session, batch_id: int, body: dict) -> dict:
    """EPCIS JSON as it is, or the simple form turned into EPCIS."""
    if "step" not in body:
        return body
    try:
        form = SimpleEventIn.model_validate(body)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = ".".join(str(p) for p in e["loc"])
        raise InvalidInput(f"{field}: {e['msg']}", field=field) from None
    batch = service._batch(session, batch_id)
    return service.simple_event(session, batch, **form.model_dump())


@router.post("/batches", status_code=201)
def create_batch(body: BatchIn, session: SessionDep, actor: ActorDep) -> dict:
    batch = service.create_batch(session, actor, **body.model_dump())
    return _batch_out(session, batch)


@router.get("/batches/{batch_id}")
def show_batch(batch_id: int, session: SessionDep, actor: ActorDep) -> dict:
    return _batch_out(session, service._batch(session, batch_id))


@router.post("/certificates", status_code=201)
def add_certificate(body: CertificateIn, session: SessionDep, actor: ActorDep) -> dict:
    cert = service.add_certificate(session, actor, **body.model_dump())
    return {"id": cert.id, "kind": cert.kind.value, "number": cert.number, "issuer": cert.issuer,
            "valid_from": cert.valid_from.isoformat(), "valid_to": cert.valid_to.isoformat(),
            "status": service.certificate_status(cert)}


@router.post("/batches/{batch_id}/events", status_code=201,
             responses={200: {"description": "the same event was captured before: nothing added"}})
def capture(batch_id: int, session: SessionDep, actor: ActorDep,
            body: Annotated[dict[str, Any], Body(description="an EPCIS 2.0 JSON event, or the "
                                                             "simple form (with 'step')")]):
    event = _as_event(session, batch_id, body)
    row, created = service.capture(session, actor, batch_id, event)
    return JSONResponse({"event_id": row.event_id, "created": created, "event": row.body},
                        status_code=201 if created else 200)


@router.get("/batches/{batch_id}/events")
def list_events(batch_id: int, session: SessionDep, actor: ActorDep) -> list[dict]:
    return service.events(session, batch_id)


@router.post("/batches/{batch_id}/corrections", status_code=201)
def correct(batch_id: int, body: CorrectIn, session: SessionDep, actor: ActorDep) -> dict:
    corrective = _as_event(session, batch_id, body.corrective) if body.corrective else None
    return service.correct(session, actor, batch_id, body.event_id, reason=body.reason,
                           corrective=corrective)


@router.get("/batches/{batch_id}/export", response_class=JSONResponse)
def export_batch(batch_id: int, session: SessionDep, actor: ActorDep) -> Response:
    return _ld(service.export_batch(session, batch_id))


@router.get("/export", response_class=JSONResponse)
def export_range(session: SessionDep, actor: ActorDep,
                 start: Annotated[datetime, Query(description="from (inclusive)")],
                 end: Annotated[datetime, Query(description="to (exclusive)")]) -> Response:
    return _ld(service.export_range(session, actor, start, end))


def _ld(doc: dict) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), media_type=LD_JSON)


# ------------------------------------------------------------------ public

@public_router.get("/01/{gtin}/10/{lot}", response_class=HTMLResponse)
def batch_page(gtin: str, lot: str, request: Request, session: SessionDep,
               format: str | None = None) -> Response:
    """The page behind the QR code; ``?format=json`` or ``Accept: application/ld+json``
    gives the batch's EPCIS 2.0 document instead."""
    view = service.public_view(session, gtin, lot)
    if format == "json" or LD_JSON in request.headers.get("accept", ""):
        batch = service.find_batch(session, gtin, lot)
        return _ld(service.export_batch(session, batch.id))
    return HTMLResponse(render_page(view), headers={"Cache-Control": "public, max-age=300"})


@public_router.get("/01/{gtin}/10/{lot}/qr.svg")
def batch_qr(gtin: str, lot: str, session: SessionDep) -> Response:
    import segno

    batch = service.find_batch(session, gtin, lot)
    uri = service.batch_uri(batch)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=4, title=uri)
    return Response(out.getvalue(), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})


_CERT = {"gap": "GAP 良好农业规范", "geographical_indication": "地理标志 Geographical indication",
         "qs_sc": "SC 食品生产许可 Food production licence", "organic": "有机 Organic"}
_STATUS = {"valid": "有效 valid", "expired": "已过期 expired", "not_yet_valid": "未生效 not yet valid"}


def render_page(v: dict) -> str:
    """Small, self-contained, mobile-first HTML: no scripts, fonts or images from elsewhere."""
    e = escape
    certs = "".join(
        f"<li class='{e(c['status'])}'><b>{e(_CERT.get(c['kind'], c['kind']))}</b> {e(c['number'])}"
        f"<br><small>{e(c['issuer'])} · {e(c['valid_from'])} – {e(c['valid_to'])} · "
        f"<b>{e(_STATUS[c['status']])}</b></small></li>" for c in v["certificates"]) \
        or "<li>—</li>"
    events = "".join(f"<li>{e(x['text'])}</li>" for x in v["events"]) or "<li>—</li>"
    produced = "采收日期 Harvest date" if v["kind"] == "harvest" else "屠宰日期 Slaughter date"
    producers = []
    if v["cooperative"]:
        producers.append(e(v["cooperative"]))
    if v["households"]:
        producers.append(f"{v['households']} 户农户 households")
    mark = "<p class='tag'>扶贫产品 Poverty-alleviation product</p>" if v["poverty_linked"] else ""
    return f"""<!doctype html>
<html lang="zh-Hans"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(v['product'])} · {e(v['lot'])}</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:36em;padding:1em;color:#222}}
h1{{font-size:1.3em;margin:.2em 0}}dl{{display:grid;grid-template-columns:auto 1fr;gap:.3em 1em}}
dt{{color:#666}}dd{{margin:0}}ul{{padding-left:1.2em}}li{{margin:.4em 0}}
.expired{{color:#a00}}.tag{{background:#e8f5e9;display:inline-block;padding:.1em .5em}}
small{{color:#555}}code{{word-break:break-all;font-size:.8em}}
</style></head><body>
<h1>{e(v['product'])}</h1>{mark}
<dl>
<dt>批次 Lot</dt><dd>{e(v['lot'])}</dd>
<dt>产地 Origin</dt><dd>{e(v['origin'])}</dd>
<dt>生产者 Producers</dt><dd>{' · '.join(producers) or '—'}</dd>
<dt>{produced}</dt><dd>{e(v['produced_on'])}</dd>
<dt>数量 Quantity</dt><dd>{e(v['quantity'])} {e(v['unit'])}</dd>
<dt>商家 Seller</dt><dd>{e(v['seller'])}</dd>
</dl>
<h2>证书 Certificates</h2><ul>{certs}</ul>
<h2>溯源记录 Chain of events</h2><ol>{events}</ol>
<p><small>GS1 Digital Link: <code>{e(v['uri'])}</code><br>
<a href="?format=json">EPCIS 2.0 JSON</a></small></p>
</body></html>"""
