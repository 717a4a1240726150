"""HTTP routes of the service network: stations, delivery zones and quotes, assisted
purchases, consignment of villagers' products.  Every route needs sign-in; the rules of
who may do what live in ``service``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from fastapi import Query
from pydantic import BaseModel, Field, StrictBool, StrictInt

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from ..db import session_factory
from ..errors import NotFound
from . import service
from .models import Zone

router = ApiRouter(prefix="/api/stations", tags=["stations"])


class StationIn(BaseModel):
    region_code: str = Field(description="a county (service centre), township or village code")
    name: str = Field(min_length=1, max_length=200)
    keeper_username: str | None = Field(None, max_length=64)
    phone: str = Field("", max_length=32)
    commission_bp: StrictInt = Field(service.DEFAULT_COMMISSION_BP, ge=0, le=10000,
                                     description="basis points of the items total (1000 = 10 %)")


class StationPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    keeper_username: str | None = Field(None, max_length=64, description="empty string: no keeper")
    phone: str | None = Field(None, max_length=32)
    commission_bp: StrictInt | None = Field(None, ge=0, le=10000)
    active: StrictBool | None = None


class ZoneIn(BaseModel):
    fee_fen: StrictInt = Field(ge=0, description="up to the base weight, integer fen")
    days: StrictInt = Field(ge=0, le=365)
    base_weight_g: StrictInt = Field(1000, ge=0)
    per_kg_fen: StrictInt = Field(0, ge=0, description="each started kg above the base weight")
    door_delivery: StrictBool = Field(True, description="false: couriers stop short, pickup at a station")


class AssistedIn(BaseModel):
    household_id: int
    order_id: int
    member_id: int | None = None


class AssistedItemIn(BaseModel):
    sku_id: int
    quantity: StrictInt = Field(gt=0, le=999)


class AssistedCheckoutIn(BaseModel):
    household_id: int
    member_id: int | None = None
    key: str = Field(min_length=1, max_length=100, description="the checkout's idempotency key")
    items: list[AssistedItemIn] = Field(min_length=1)
    ship_to_code: str | None = Field(None, description="default: the household's village")
    address: str = Field("", max_length=300)
    contact_name: str = Field("", max_length=100)


class ConsignmentIn(BaseModel):
    household_id: int
    key: str = Field(min_length=1, max_length=100, description="idempotency key of the receipt")
    product: str = Field(min_length=1, max_length=200)
    quantity: StrictInt = Field(gt=0)
    unit: str = Field(min_length=1, max_length=20)
    price_fen: StrictInt = Field(gt=0, description="agreed price per unit, integer fen")
    received_on: date


class SaleIn(BaseModel):
    key: str = Field(min_length=1, max_length=100, description="idempotency key of the sale")
    quantity: StrictInt = Field(gt=0)
    sold_on: date
    unit_price_fen: StrictInt | None = Field(None, gt=0, description="default: the agreed price")


class PayoutIn(BaseModel):
    household_id: int
    key: str = Field(min_length=1, max_length=100, description="idempotency key of the payout")
    date: date


def _sale_view(sale) -> dict:
    return {"id": sale.id, "consignment_id": sale.consignment_id, "key": sale.key,
            "quantity": sale.quantity, "amount_fen": sale.amount_fen,
            "sold_on": sale.sold_on.isoformat(), "transaction_id": sale.transaction_id}


# Fixed paths before /{station_id}.

@router.get("")
def network(session: SessionDep, _: ActorDep,
            county: str = Query(description="county code")) -> dict:
    """A county's service network: its centre, townships and villages with their stations."""
    return service.network(session, county)


@router.post("", status_code=201)
def create(body: StationIn, session: SessionDep, actor: ActorDep) -> dict:
    return service.station_view(service.create_station(session, actor, **body.model_dump()))


@router.get("/quote")
def quote(session: SessionDep, _: ActorDep, ship_to: str = Query(description="region code"),
          weight_g: int = Query(ge=0, le=10_000_000)) -> dict:
    """Delivery fee (fen), expected days and pickup station for a parcel to a region."""
    return asdict(service.quote_delivery(session, ship_to, weight_g))


@router.get("/zones/{county_code}")
def zones(county_code: str, session: SessionDep, _: ActorDep) -> list[dict]:
    """The county's delivery zones and its townships' overrides."""
    return service.zones(session, county_code)


@router.put("/zones/{region_code}/{zone}")
def set_zone(region_code: str, zone: Zone, body: ZoneIn, session: SessionDep,
             actor: ActorDep) -> dict:
    """Set a zone's fee and time for a county, or override it for one township."""
    return service.zone_view(service.set_zone(session, actor, region_code, zone,
                                              **body.model_dump()))


@router.delete("/zones/{region_code}/{zone}", status_code=204)
def remove_zone(region_code: str, zone: Zone, session: SessionDep, actor: ActorDep) -> None:
    if not service.remove_zone(session, actor, region_code, zone):
        raise NotFound(f"no {zone.value} zone set for {region_code}")


@router.post("/assisted-orders/{order_id}/commission")
def pay_commission(order_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """Post the keeper's commission on a completed assisted order (once)."""
    return service.assisted_view(service.pay_commission(session, actor, order_id))


@router.get("/{station_id}")
def show(station_id: int, session: SessionDep, _: ActorDep) -> dict:
    return service.station_view(service.get_station(session, station_id))


@router.patch("/{station_id}")
def update(station_id: int, body: StationPatch, session: SessionDep, actor: ActorDep) -> dict:
    changes = body.model_dump(exclude_unset=True)
    return service.station_view(service.update_station(session, actor, station_id, **changes))


@router.post("/{station_id}/assisted-orders", status_code=201)
def record_assisted(station_id: int, body: AssistedIn, session: SessionDep,
                    actor: ActorDep) -> dict:
    """Record an order the keeper placed for a household of the station's village."""
    return service.assisted_view(service.record_assisted_order(
        session, actor, station_id, body.household_id, body.order_id, body.member_id))


@router.post("/{station_id}/assisted-checkout", status_code=201)
def assisted_checkout(station_id: int, body: AssistedCheckoutIn, actor: ActorDep) -> dict:
    """The keeper buys for a villager: checkout with the keeper as buyer, recorded as
    assisted (the same key again returns the same order)."""
    from ..market.orders import Item

    args = {"address": body.address, "contact_name": body.contact_name}
    if body.ship_to_code:
        args["ship_to_code"] = body.ship_to_code
    return service.assisted_checkout(
        session_factory(), actor, station_id, body.household_id, body.key,
        [Item(i.sku_id, i.quantity) for i in body.items], member_id=body.member_id, **args)


@router.get("/{station_id}/consignments")
def consignments(station_id: int, session: SessionDep, actor: ActorDep) -> list[dict]:
    return service.consignments(session, actor, station_id)


@router.post("/{station_id}/consignments", status_code=201)
def receive(station_id: int, body: ConsignmentIn, session: SessionDep, actor: ActorDep) -> dict:
    """Take a household's product in for sale at an agreed price per unit."""
    data = body.model_dump()
    household_id = data.pop("household_id")
    return service.consignment_view(service.receive(session, actor, station_id, household_id,
                                                    **data))


@router.post("/{station_id}/consignments/{consignment_id}/sales", status_code=201)
def sell(station_id: int, consignment_id: int, body: SaleIn, session: SessionDep,
         actor: ActorDep) -> dict:
    """Record what sold; the household's account is credited with it."""
    return _sale_view(service.sell(session, actor, station_id, consignment_id,
                                   **body.model_dump()))


@router.post("/{station_id}/payouts")
def payout(station_id: int, body: PayoutIn, session: SessionDep, actor: ActorDep) -> dict:
    """Pay the household everything the station holds for it from its sales."""
    txn = service.pay_household(session, actor, station_id, body.household_id, key=body.key,
                                day=body.date)
    return {"transaction_id": txn.id if txn else None,
            "owed_fen": service.owed(session, station_id, body.household_id)}
