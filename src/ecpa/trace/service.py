"""Use cases of traceability: batches, certificates, capturing EPCIS events (append-only,
identified by their canonical hash), corrections by error declaration, export, and the
public view of a batch behind its GS1 Digital Link.

Who may write: administrators anywhere, county officers within their region, and the
manager of the seller whose product the batch is (``Seller.manager_username``).  Reading a
batch's public page and its EPCIS events needs no sign-in: they carry no personal data
(households are counted, never named).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import get_settings
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..market.models import Product, Seller, Sku
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..regions.models import Region
from ..registry.models import Household, Organisation, OrganisationKind
from . import epcis
from .models import (
    Batch,
    BatchHousehold,
    BatchKind,
    Certificate,
    CertificateKind,
    Event,
    EventBatch,
    EventKind,
)

WRITERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.COOPERATIVE_MANAGER, Role.ENTERPRISE)
CHINA = timezone(timedelta(hours=8))
UOM_RE = re.compile(r"^[A-Z0-9]{2,3}$")
UOM_WORDS = {"KGM": "kg", "GRM": "g", "TNE": "t", "LTR": "L", "H87": "pieces", "EA": "each"}


def resolver() -> str:
    """Domain of the batch URIs printed in QR codes: GS1's resolver unless configured."""
    return (getattr(get_settings(), "trace_resolver", None) or epcis.GS1_DOMAIN).rstrip("/")


# ------------------------------------------------------------------ access

def _seller_of(session: Session, product: Product) -> Seller:
    return session.get(Seller, product.seller_id)


def require_batch_writer(session: Session, actor: Actor, product: Product) -> None:
    """Administrators; county officers over the product's origin; the seller's manager."""
    seller = _seller_of(session, product)
    if seller is not None and seller.manager_username == actor.username:
        return
    require_role(actor, *WRITERS)
    if actor.role is Role.ADMINISTRATOR:
        return
    if actor.role is Role.COUNTY_OFFICER:
        require_region(actor, product.origin_code)
        return
    raise PermissionDenied("only the seller's manager, a county officer or an administrator "
                           "records batches of this product", product_id=product.id)


def _batch(session: Session, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}", batch_id=batch_id)
    return batch


def _writable_batch(session: Session, actor: Actor, batch_id: int) -> Batch:
    batch = _batch(session, batch_id)
    require_batch_writer(session, actor, session.get(Product, batch.product_id))
    return batch


# ------------------------------------------------------------------ batches

def batch_uri(batch: Batch, domain: str | None = None) -> str:
    return epcis.digital_link(batch.gtin, batch.lot, domain or resolver())


def create_batch(session: Session, actor: Actor, *, product_id: int, gtin: str, lot: str,
                 origin_code: str, produced_on: date, quantity: Decimal | int | str, uom: str,
                 kind: BatchKind | str = BatchKind.HARVEST, sku_id: int | None = None,
                 household_ids: Iterable[int] = (), cooperative_id: int | None = None) -> Batch:
    product = session.get(Product, product_id)
    if product is None:
        raise InvalidInput(f"no product {product_id}", field="product_id")
    require_batch_writer(session, actor, product)
    if sku_id is not None:
        sku = session.get(Sku, sku_id)
        if sku is None or sku.product_id != product_id:
            raise InvalidInput(f"SKU {sku_id} is not a SKU of product {product_id}", field="sku_id")
    try:
        gtin14 = epcis.normalise_gtin(gtin)
    except ValueError as exc:
        raise InvalidInput(f"GTIN {gtin!r}: {exc}", field="gtin") from None
    if not isinstance(lot, str) or not epcis.LOT_RE.match(lot):
        raise InvalidInput("lot: 1 to 20 letters, digits, '.', '_' or '-'", field="lot")
    region = session.get(Region, origin_code)
    if region is None:
        raise InvalidInput(f"no region {origin_code}", field="origin_code")
    if actor.role is Role.COUNTY_OFFICER:
        require_region(actor, origin_code)
    try:
        kind = BatchKind(kind)
    except ValueError:
        raise InvalidInput(f"kind must be one of {[k.value for k in BatchKind]}", field="kind") from None
    if produced_on > date.today():
        raise InvalidInput("the harvest or slaughter date is in the future", field="produced_on")
    try:
        qty = Decimal(str(quantity))
    except InvalidOperation:
        raise InvalidInput("quantity must be a number", field="quantity") from None
    if not qty.is_finite() or qty <= 0 or qty != qty.quantize(Decimal("0.001")) or qty >= 10**11:
        raise InvalidInput("quantity must be positive, at most 3 decimals", field="quantity")
    if not isinstance(uom, str) or not UOM_RE.match(uom):
        raise InvalidInput("uom is a UN/ECE Rec. 20 code such as KGM, TNE, H87", field="uom")
    households = sorted(set(household_ids))
    for hid in households:
        if session.get(Household, hid) is None:
            raise InvalidInput(f"no household {hid}", field="household_ids")
    if cooperative_id is not None:
        org = session.get(Organisation, cooperative_id)
        if org is None or org.kind is not OrganisationKind.COOPERATIVE:
            raise InvalidInput(f"no cooperative with id {cooperative_id}", field="cooperative_id")
    if not households and cooperative_id is None:
        raise InvalidInput("name the producing households, the cooperative, or both",
                           field="household_ids")
    if session.scalar(select(Batch.id).where(Batch.gtin == gtin14, Batch.lot == lot)) is not None:
        raise Conflict(f"batch {lot} of GTIN {gtin14} exists already", field="lot")
    batch = Batch(product_id=product_id, sku_id=sku_id, gtin=gtin14, lot=lot,
                  origin_code=origin_code, cooperative_id=cooperative_id, kind=kind,
                  produced_on=produced_on, quantity=qty, uom=uom, created_by=actor.username)
    session.add(batch)
    session.flush()
    for hid in households:
        session.add(BatchHousehold(batch_id=batch.id, household_id=hid))
    audit(session, actor, "create", "trace_batch", batch.id)
    session.flush()
    return batch


def find_batch(session: Session, gtin: str, lot: str) -> Batch:
    try:
        gtin14 = epcis.normalise_gtin(gtin)
    except ValueError as exc:
        raise NotFound(f"GTIN {gtin!r}: {exc}") from None
    batch = session.scalar(select(Batch).where(Batch.gtin == gtin14, Batch.lot == lot))
    if batch is None:
        raise NotFound(f"no batch {lot} of GTIN {gtin14}")
    return batch


# ------------------------------------------------------------- certificates

def add_certificate(session: Session, actor: Actor, *, kind: CertificateKind | str, number: str,
                    issuer: str, valid_from: date, valid_to: date, batch_id: int | None = None,
                    seller_id: int | None = None) -> Certificate:
    if (batch_id is None) == (seller_id is None):
        raise InvalidInput("a certificate belongs to a batch or to a seller: give exactly one",
                           field="batch_id")
    if batch_id is not None:
        _writable_batch(session, actor, batch_id)
    else:
        seller = session.get(Seller, seller_id)
        if seller is None:
            raise InvalidInput(f"no seller {seller_id}", field="seller_id")
        if seller.manager_username != actor.username:
            require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
            require_region(actor, seller.region_code)
    try:
        kind = CertificateKind(kind)
    except ValueError:
        raise InvalidInput(f"kind must be one of {[k.value for k in CertificateKind]}",
                           field="kind") from None
    for field, value in (("number", number), ("issuer", issuer)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{field} is required", field=field)
    if valid_to < valid_from:
        raise InvalidInput("valid_to is before valid_from", field="valid_to")
    cert = Certificate(batch_id=batch_id, seller_id=seller_id, kind=kind, number=number.strip(),
                       issuer=issuer.strip(), valid_from=valid_from, valid_to=valid_to,
                       created_by=actor.username)
    session.add(cert)
    session.flush()
    audit(session, actor, "create", "trace_certificate", cert.id)
    return cert


def certificate_status(cert: Certificate, today: date | None = None) -> str:
    today = today or date.today()
    if cert.valid_to < today:
        return "expired"
    if cert.valid_from > today:
        return "not_yet_valid"
    return "valid"


def certificates(session: Session, batch: Batch, today: date | None = None) -> list[dict]:
    """The batch's own certificates and its seller's, each with its status today."""
    product = session.get(Product, batch.product_id)
    rows = session.scalars(select(Certificate).where(
        (Certificate.batch_id == batch.id) | (Certificate.seller_id == product.seller_id))
        .order_by(Certificate.valid_to.desc(), Certificate.id)).all()
    return [{"id": c.id, "kind": c.kind.value, "number": c.number, "issuer": c.issuer,
             "valid_from": c.valid_from.isoformat(), "valid_to": c.valid_to.isoformat(),
             "holder": "batch" if c.batch_id else "seller", "status": certificate_status(c, today)}
            for c in rows]


# ------------------------------------------------------------------ events

def _aware(dt: datetime) -> datetime:
    # A time without an offset is taken as China Standard Time, where the batches are.
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=CHINA)


def _location(value: str | None, field: str) -> dict | None:
    """A GLN (13 digits) or an SGLN URN / Digital Link URI as {"id": …}."""
    if value is None or value == "":
        return None
    value = value.strip()
    if value.isdigit():
        try:
            return {"id": epcis.gln_uri(value)}
        except ValueError as exc:
            raise InvalidInput(f"{field}: {exc}", field=field) from None
    canonical = epcis.canonical_value(value)
    if not canonical.startswith(f"{epcis.GS1_DOMAIN}/414/"):
        raise InvalidInput(f"{field}: give a GLN, an SGLN URN or a GS1 Digital Link /414/ URI",
                           field=field)
    return {"id": value}


STEPS = ("commissioning", "packing", "processing", "shipping", "receiving")


def simple_event(session: Session, batch: Batch, *, step: str, event_time: datetime,
                 read_point: str | None = None, biz_location: str | None = None,
                 quantity: Decimal | int | str | None = None, container_sscc: str | None = None,
                 output_batch_id: int | None = None, output_quantity: Decimal | int | str | None = None
                 ) -> dict:
    """An EPCIS 2.0 event from the simple form: one step in the chain of a batch."""
    if step not in STEPS:
        raise InvalidInput(f"step must be one of {list(STEPS)}", field="step")
    when = _aware(event_time)
    qty = _qty(quantity if quantity is not None else batch.quantity, "quantity")
    here = {"class": epcis.digital_link(batch.gtin, batch.lot), "quantity": qty, "uom": batch.uom}
    element = {"epcClass": here["class"], "quantity": qty, "uom": batch.uom}
    ev: dict = {"type": "ObjectEvent", "eventTime": epcis.iso_time(when),
                "eventTimeZoneOffset": epcis.offset_of(when)}
    if step == "commissioning":
        n_households = len(session.scalars(select(BatchHousehold.id).where(
            BatchHousehold.batch_id == batch.id)).all())
        ilmd = {"ecpa:harvestDate" if batch.kind is BatchKind.HARVEST else "ecpa:slaughterDate":
                batch.produced_on.isoformat(),
                "ecpa:originRegion": batch.origin_code, "ecpa:householdCount": n_households}
        if batch.cooperative_id is not None:
            org = session.get(Organisation, batch.cooperative_id)
            ilmd["ecpa:cooperativeCreditCode"] = org.credit_code
        ev |= {"action": "ADD", "quantityList": [element], "bizStep": "commissioning",
               "disposition": "active", "ilmd": ilmd}
    elif step == "packing":
        if not container_sscc:
            raise InvalidInput("packing needs the case or pallet's SSCC", field="container_sscc")
        try:
            parent = epcis.sscc_uri(container_sscc)
        except ValueError as exc:
            raise InvalidInput(f"container_sscc: {exc}", field="container_sscc") from None
        ev = {"type": "AggregationEvent", **{k: ev[k] for k in ("eventTime", "eventTimeZoneOffset")},
              "parentID": parent, "childQuantityList": [element], "action": "ADD",
              "bizStep": "packing", "disposition": "in_progress"}
    elif step == "processing":
        if output_batch_id is None:
            raise InvalidInput("processing needs the output batch", field="output_batch_id")
        out = session.get(Batch, output_batch_id)
        if out is None or out.id == batch.id:
            raise InvalidInput(f"no other batch {output_batch_id}", field="output_batch_id")
        out_qty = _qty(output_quantity if output_quantity is not None else out.quantity,
                       "output_quantity")
        ev = {"type": "TransformationEvent", **{k: ev[k] for k in ("eventTime", "eventTimeZoneOffset")},
              "inputQuantityList": [element],
              "outputQuantityList": [{"epcClass": epcis.digital_link(out.gtin, out.lot),
                                      "quantity": out_qty, "uom": out.uom}],
              "bizStep": "commissioning", "disposition": "active"}
    elif step == "shipping":
        ev |= {"action": "OBSERVE", "quantityList": [element], "bizStep": "shipping",
               "disposition": "in_transit"}
    else:
        ev |= {"action": "OBSERVE", "quantityList": [element], "bizStep": "receiving",
               "disposition": "in_progress"}
    for key, value, field in (("readPoint", read_point, "read_point"),
                              ("bizLocation", biz_location, "biz_location")):
        loc = _location(value, field)
        if loc:
            ev[key] = loc
    return ev


def _qty(value, field: str) -> int | float:
    try:
        q = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"{field} must be a number", field=field) from None
    if not q.is_finite() or q <= 0:
        raise InvalidInput(f"{field} must be positive", field=field)
    # JSON numbers: an integer when whole, else a float of at most 3 decimals.
    return int(q) if q == q.to_integral_value() else float(q.quantize(Decimal("0.001")))


_ALLOWED_TOP = epcis._KNOWN


def _check_event(event: dict, context: object) -> dict:
    """Refuse what ECPA will not store; return the event with its @context in place."""
    if not isinstance(event, dict):
        raise InvalidInput("an event is a JSON object", field="event")
    if event.get("type") not in epcis.EVENT_TYPES:
        raise InvalidInput(f"type must be one of {list(epcis.EVENT_TYPES)}", field="type")
    if event.get("sensorElementList"):
        raise InvalidInput("sensor data is not accepted by ECPA", field="sensorElementList")
    if "recordTime" in event:
        raise InvalidInput("recordTime is set by the repository, not the capturer", field="recordTime")
    prefixes = epcis.context_prefixes(context) | epcis.context_prefixes(event.get("@context"))
    for key in event:
        if key not in _ALLOWED_TOP:
            head, sep, _ = key.partition(":")
            if not (sep and (head in prefixes or key.startswith(("http://", "https://")))):
                raise InvalidInput(f"unknown field {key!r}: extensions need a namespace prefix "
                                   "declared in @context", field=key)
    ev = copy.deepcopy(event)
    ctx = event.get("@context") or context or epcis.CONTEXT
    ev["@context"] = ctx
    return ev


def _schema_check(ev: dict) -> None:
    body = {k: v for k, v in ev.items() if k != "@context"}
    doc = epcis.document([body], datetime.now(UTC))
    doc["@context"] = ev["@context"]
    errors = epcis.schema_errors(doc)
    if errors:
        path, message = errors[0]
        field = path.removeprefix("epcisBody.eventList.0.").removeprefix("epcisBody.eventList.0") or "event"
        raise InvalidInput(f"not a valid EPCIS 2.0 event ({field}: {message})", field=field,
                           problems=[{"field": p, "message": m} for p, m in errors[:10]])


def capture(session: Session, actor: Actor, batch_id: int, event: dict,
            context: object = None) -> tuple[Event, bool]:
    """Capture one EPCIS event of a batch; (row, created).  The eventID is the canonical
    event hash: the same event captured again returns the first row and adds nothing."""
    batch = _writable_batch(session, actor, batch_id)
    ev = _check_event(event, context)
    eid = epcis.event_hash(ev)
    declared = ev.get("errorDeclaration")
    if ev.get("eventID") not in (None, eid):
        raise InvalidInput(f"eventID must be the canonical event hash {eid}", field="eventID")
    kind = EventKind.ERROR_DECLARATION if declared else EventKind.EVENT
    existing = session.scalar(select(Event).where(Event.event_id == eid, Event.kind == kind))
    if existing is not None:
        return existing, False
    own = epcis.canonical_value(epcis.digital_link(batch.gtin, batch.lot))
    named = epcis.identifiers(ev)
    if own not in named:
        raise InvalidInput(f"the event does not name batch {batch.lot} ({own})",
                           field="quantityList")
    if declared:
        if session.scalar(select(Event.id).where(Event.event_id == eid,
                                                 Event.kind == EventKind.EVENT)) is None:
            raise InvalidInput("an error declaration repeats a captured event exactly; "
                               "no captured event has this hash", field="errorDeclaration")
        for cid in declared.get("correctiveEventIDs") or []:
            if session.scalar(select(Event.id).where(Event.event_id == cid)) is None:
                raise InvalidInput(f"corrective event {cid} has not been captured",
                                   field="errorDeclaration.correctiveEventIDs")
    ev["eventID"] = eid
    _schema_check(ev)
    when = datetime.fromisoformat(epcis._fix_time(ev["eventTime"]))
    body = {k: v for k, v in ev.items() if k != "@context"}
    if ev["@context"] != epcis.CONTEXT:
        body["@context"] = ev["@context"]
    row = Event(event_id=eid, kind=kind, event_type=ev["type"],
                biz_step=str(ev["bizStep"]) if ev.get("bizStep") else None,
                event_time=when.astimezone(UTC).replace(tzinfo=None), body=body,
                recorded_by=actor.username)
    session.add(row)
    session.flush()
    for other_id, role in _batches_named(session, ev):
        session.add(EventBatch(event_row_id=row.id, batch_id=other_id, role=role))
    audit(session, actor, "capture", "trace_event", row.id, {"event_id": eid, "kind": kind.value})
    session.flush()
    return row, True


def _batches_named(session: Session, ev: dict) -> list[tuple[int, str]]:
    roles = {"quantityList": "object", "epcList": "object", "childQuantityList": "child",
             "childEPCs": "child", "inputQuantityList": "input", "inputEPCList": "input",
             "outputQuantityList": "output", "outputEPCList": "output"}
    found: dict[int, str] = {}
    for name, role in roles.items():
        for item in ev.get(name) or []:
            uri = epcis.canonical_value(item.get("epcClass", "") if isinstance(item, dict) else item)
            m = re.fullmatch(r"https://id\.gs1\.org/01/(\d{14})/10/([^/]+)", uri)
            if m:
                b = session.scalar(select(Batch.id).where(Batch.gtin == m[1], Batch.lot == m[2]))
                if b is not None:
                    found.setdefault(b, role)
    return sorted(found.items())


def capture_simple(session: Session, actor: Actor, batch_id: int, **form) -> tuple[Event, bool]:
    batch = _writable_batch(session, actor, batch_id)
    return capture(session, actor, batch_id, simple_event(session, batch, **form))


def correct(session: Session, actor: Actor, batch_id: int, event_id: str, *,
            reason: str = "incorrect_data", corrective: dict | None = None,
            declared_at: datetime | None = None) -> dict:
    """Declare a captured event erroneous — never edit it: capture the corrective event
    (if any), then an error declaration that repeats the original event with an
    ``errorDeclaration`` naming the corrective event IDs.  Repeating it changes nothing."""
    if reason not in ("incorrect_data", "did_not_occur"):
        raise InvalidInput("reason is incorrect_data or did_not_occur", field="reason")
    original = session.scalar(select(Event).where(Event.event_id == event_id,
                                                  Event.kind == EventKind.EVENT))
    if original is None:
        raise NotFound(f"no captured event {event_id}", field="event_id")
    corrective_ids = []
    if corrective is not None:
        row, _ = capture(session, actor, batch_id, corrective)
        if row.event_id == event_id:
            raise InvalidInput("the corrective event is the same as the erroneous one",
                               field="corrective")
        corrective_ids.append(row.event_id)
    existing = session.scalar(select(Event).where(Event.event_id == event_id,
                                                  Event.kind == EventKind.ERROR_DECLARATION))
    if existing is not None:
        return {"declaration": existing.body, "created": False, "corrective_event_ids":
                existing.body["errorDeclaration"].get("correctiveEventIDs", [])}
    declaration = copy.deepcopy(original.body)
    declaration.setdefault("@context", epcis.CONTEXT)
    when = _aware(declared_at or datetime.now(CHINA))
    declaration["errorDeclaration"] = {"declarationTime": epcis.iso_time(when), "reason": reason}
    if corrective_ids:
        declaration["errorDeclaration"]["correctiveEventIDs"] = corrective_ids
    row, created = capture(session, actor, batch_id, declaration)
    return {"declaration": row.body, "created": created, "corrective_event_ids": corrective_ids}


# ------------------------------------------------------------------ reading

def _rows_of(session: Session, batch_ids: Iterable[int]) -> list[Event]:
    ids = list(batch_ids)
    if not ids:
        return []
    # IN rather than DISTINCT: PostgreSQL cannot compare json columns.
    linked = select(EventBatch.event_row_id).where(EventBatch.batch_id.in_(ids))
    q = select(Event).where(Event.id.in_(linked)).order_by(Event.event_time, Event.id)
    return list(session.scalars(q).all())


def chain(session: Session, batch: Batch) -> list[int]:
    """The batch and, through processing events, every batch it was made from."""
    seen, todo = [batch.id], [batch.id]
    while todo:
        current = todo.pop()
        outs = select(EventBatch.event_row_id).where(EventBatch.batch_id == current,
                                                     EventBatch.role == "output")
        inputs = session.scalars(select(EventBatch.batch_id).where(
            EventBatch.event_row_id.in_(outs), EventBatch.role == "input")).all()
        for b in inputs:
            if b not in seen:
                seen.append(b)
                todo.append(b)
    return seen


def events(session: Session, batch_id: int) -> list[dict]:
    """A batch's events in time order, each with whether an error declaration retracts it."""
    batch = _batch(session, batch_id)
    rows = _rows_of(session, [batch.id])
    retracted = {r.event_id for r in rows if r.kind is EventKind.ERROR_DECLARATION}
    return [{"event_id": r.event_id, "kind": r.kind.value, "type": r.event_type,
             "biz_step": r.biz_step, "event_time": r.event_time.isoformat() + "Z",
             "retracted": r.kind is EventKind.EVENT and r.event_id in retracted,
             "event": _export_body(r)} for r in rows]


def _export_body(row: Event) -> dict:
    body = dict(row.body)
    body["recordTime"] = row.record_time.replace(tzinfo=UTC).isoformat(
        timespec="milliseconds")
    return body


def export_batch(session: Session, batch_id: int, now: datetime | None = None) -> dict:
    """The EPCIS 2.0 document of a batch's whole chain (its inputs' events included)."""
    batch = _batch(session, batch_id)
    rows = _rows_of(session, chain(session, batch))
    return epcis.document([_export_body(r) for r in rows], now or datetime.now(CHINA))


def export_range(session: Session, actor: Actor, start: datetime, end: datetime,
                 now: datetime | None = None) -> dict:
    """The EPCIS 2.0 document of every event in [start, end) on batches in the actor's region."""
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    if end <= start:
        raise InvalidInput("end must be after start", field="end")
    lo = _aware(start).astimezone(UTC).replace(tzinfo=None)
    hi = _aware(end).astimezone(UTC).replace(tzinfo=None)
    rows = session.scalars(select(Event).where(Event.event_time >= lo, Event.event_time < hi)
                           .order_by(Event.event_time, Event.id)).all()
    if actor.region_code is not None:
        allowed = []
        for r in rows:
            origins = session.scalars(select(Batch.origin_code).join(
                EventBatch, EventBatch.batch_id == Batch.id).where(EventBatch.event_row_id == r.id)).all()
            if any(actor.may_reach(o) for o in origins):
                allowed.append(r)
        rows = allowed
    return epcis.document([_export_body(r) for r in rows], now or datetime.now(CHINA))


def validate_export(doc: dict) -> None:
    errors = epcis.schema_errors(doc)
    if errors:
        raise InvalidInput(f"export does not validate: {errors[0][0]}: {errors[0][1]}",
                           field=errors[0][0] or "document")


_WORDS = {"commissioning": "harvested and registered", "packing": "packed", "shipping": "shipped",
          "receiving": "received", "processing": "processed"}


def _place(session: Session, code: str) -> str:
    names = []
    region = session.get(Region, code)
    while region is not None and len(names) < 4:
        names.append(region.name)
        region = session.get(Region, region.parent_code) if region.parent_code else None
    return " · ".join(names) if names else code


def _plain(session: Session, row: Event, batch: Batch, retracted: set[str]) -> str:
    body = row.body
    step = str(body.get("bizStep") or "").rsplit("-", 1)[-1].rsplit("/", 1)[-1]
    local = body.get("eventTime", "")
    when = local[:16].replace("T", " ") + " (UTC" + body.get("eventTimeZoneOffset", "") + ")"
    amount = ""
    for name in ("quantityList", "childQuantityList", "inputQuantityList"):
        for q in body.get(name) or []:
            amount = f"{q['quantity']} {UOM_WORDS.get(q.get('uom', ''), q.get('uom', ''))}".strip()
    if row.kind is EventKind.ERROR_DECLARATION:
        return f"{when}: the record of {row.event_type} above was declared incorrect"
    if row.event_type == "TransformationEvent":
        what = "processed into a new batch"
    elif row.event_type == "AggregationEvent":
        what = "packed into case " + str(body.get("parentID", "")).rsplit("/", 1)[-1]
    else:
        what = _WORDS.get(step, step or "recorded")
    text = f"{when}: {amount} {what}".replace("  ", " ")
    if row.event_id in retracted:
        text += " — corrected (see below)"
    return text


def public_view(session: Session, gtin: str, lot: str, today: date | None = None) -> dict:
    """What a consumer sees on scanning the bag: no names of people, only counts."""
    batch = find_batch(session, gtin, lot)
    product = session.get(Product, batch.product_id)
    seller = session.get(Seller, product.seller_id)
    coop = session.get(Organisation, batch.cooperative_id) if batch.cooperative_id else None
    n_households = len(session.scalars(select(BatchHousehold.id).where(
        BatchHousehold.batch_id == batch.id)).all())
    rows = _rows_of(session, chain(session, batch))
    retracted = {r.event_id for r in rows if r.kind is EventKind.ERROR_DECLARATION}
    return {
        "uri": batch_uri(batch), "gtin": batch.gtin, "lot": batch.lot,
        "product": product.name, "seller": seller.name if seller else "",
        "poverty_linked": bool(seller and seller.poverty_linked),
        "origin_code": batch.origin_code, "origin": _place(session, batch.origin_code),
        "cooperative": coop.name if coop else None, "households": n_households,
        "kind": batch.kind.value, "produced_on": batch.produced_on.isoformat(),
        "quantity": f"{batch.quantity.normalize():f}", "uom": batch.uom,
        "unit": UOM_WORDS.get(batch.uom, batch.uom),
        "certificates": certificates(session, batch, today),
        "events": [{"text": _plain(session, r, batch, retracted), "event_id": r.event_id,
                    "kind": r.kind.value} for r in rows],
    }
