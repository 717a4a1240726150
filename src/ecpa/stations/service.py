"""Use cases of the service network: stations and keepers, delivery zones and quotes,
assisted purchases with the keeper's commission, consignment of villagers' products.

Money moves only through the ledger, with deterministic idempotency keys:

- ``station:<id>`` (seller) is credited with the keeper's commission, paid from
  ``platform:station-commissions`` when an assisted order completes;
- ``station:<id>:consignment`` (seller) holds what buyers paid for villagers' goods
  until the station hands it over;
- ``hh:<household>:station:<id>`` (household) is credited with each sale of the
  household's goods (industry channel: the household's sales income) and debited when
  the station pays the household out.

The ledger posts only for roles that keep books; a keeper's posting goes through
``_books`` after this module's own checks, recorded under the keeper's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..ledger.models import Account, AccountKind, Channel, Transaction
from ..ledger.service import Leg, balance, open_account, post
from ..people.access import Actor, audit, require_region, require_role, system_actor
from ..people.models import Role, User
from ..refcache import MISSING, ReferenceCache
from ..regions.codes import scope_prefix
from ..regions.models import Level, Region
from ..registry.models import Household, Member
from .models import (
    AssistedOrder,
    Consignment,
    ConsignmentSale,
    DeliveryZone,
    Station,
    StationLevel,
    Zone,
)

OFFICERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
COMMISSION_ACCOUNT = "platform:station-commissions"
DEFAULT_COMMISSION_BP = 1000  # about 10 % (seed 001 Table I)


class NoDeliveryZone(InvalidInput):
    """No delivery zone (or no pickup station) covers a ship-to region."""


def station_account(station_id: int) -> str:
    return f"station:{station_id}"


def consignment_account(station_id: int) -> str:
    return f"station:{station_id}:consignment"


def household_account(station_id: int, household_id: int) -> str:
    return f"hh:{household_id}:station:{station_id}"


def _books(actor: Actor) -> Actor:
    # Rights already checked here; the ledger records who did it.
    return system_actor(f"stations:{actor.username}"[:64])


def _fen(value: object, field: str, positive: bool = False) -> int:
    if type(value) is not int or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise InvalidInput(f"{field} must be a {kind} integer", field=field)
    return value


# --- the network ----------------------------------------------------------------------

_LEVEL = {Level.COUNTY: StationLevel.COUNTY, Level.TOWNSHIP: StationLevel.TOWNSHIP,
          Level.VILLAGE: StationLevel.VILLAGE}


def _region(session: Session, code: str, field: str = "region_code") -> Region:
    region = session.get(Region, code)
    if region is None:
        raise InvalidInput(f"unknown region {code}", field=field, region=code)
    return region


def _check_keeper(session: Session, username: str, region_code: str) -> None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise InvalidInput(f"no active user {username!r}", field="keeper_username")
    if user.role is not Role.STATION_KEEPER:
        raise InvalidInput(f"user {username!r} has role {user.role.value}, not station_keeper",
                           field="keeper_username")
    if user.region_code != region_code:
        raise InvalidInput(f"keeper {username!r} is scoped to {user.region_code}, "
                           f"the station to {region_code}", field="keeper_username")


def _commission_bp(value: object) -> int:
    if type(value) is not int or not 0 <= value <= 10000:
        raise InvalidInput("commission_bp must be an integer from 0 to 10000 (basis points)",
                           field="commission_bp")
    return value


def create_station(session: Session, actor: Actor, region_code: str, name: str,
                   keeper_username: str | None = None, phone: str = "",
                   commission_bp: int = DEFAULT_COMMISSION_BP) -> Station:
    """A county centre, township or village station, by the level of its region."""
    require_role(actor, *OFFICERS)
    region = _region(session, region_code)
    require_region(actor, region_code)
    level = _LEVEL.get(region.level)
    if level is None:
        raise InvalidInput(f"{region_code} is a {region.level.value}: stations serve a county, "
                           "a township or a village", field="region_code")
    if not name.strip():
        raise InvalidInput("a station needs a name", field="name")
    _commission_bp(commission_bp)
    if session.scalar(select(Station.id).where(Station.region_code == region_code)) is not None:
        raise Conflict(f"region {region_code} already has a station", field="region_code")
    if keeper_username:
        _check_keeper(session, keeper_username, region_code)
    station = Station(region_code=region_code, county_code=region_code[:6], level=level,
                      name=name.strip(), keeper_username=keeper_username or None,
                      phone=phone.strip(), commission_bp=commission_bp, active=True)
    session.add(station)
    session.flush()
    audit(session, actor, "create", "station", station.id, {"region_code": region_code})
    return station


def get_station(session: Session, station_id: int) -> Station:
    station = session.get(Station, station_id)
    if station is None:
        raise NotFound(f"no station {station_id}")
    return station


_UNSET = object()


def update_station(session: Session, actor: Actor, station_id: int, *, name: str | None = None,
                   keeper_username: object = _UNSET, phone: str | None = None,
                   commission_bp: int | None = None, active: bool | None = None) -> Station:
    """Change a station; ``keeper_username=None`` leaves it without a keeper."""
    require_role(actor, *OFFICERS)
    station = get_station(session, station_id)
    require_region(actor, station.region_code)
    changed: dict[str, object] = {}
    if name is not None:
        if not name.strip():
            raise InvalidInput("a station needs a name", field="name")
        station.name = changed["name"] = name.strip()
    if keeper_username is not _UNSET:
        if keeper_username:
            _check_keeper(session, str(keeper_username), station.region_code)
        station.keeper_username = changed["keeper_username"] = keeper_username or None
    if phone is not None:
        station.phone = changed["phone"] = phone.strip()
    if commission_bp is not None:
        station.commission_bp = changed["commission_bp"] = _commission_bp(commission_bp)
    if active is not None:
        station.active = changed["active"] = bool(active)
    session.flush()
    audit(session, actor, "update", "station", station.id, changed)
    return station


def station_view(station: Station) -> dict:
    # The phone is the station's public service number, not a villager's.
    return {"id": station.id, "region_code": station.region_code, "level": station.level.value,
            "name": station.name, "keeper_username": station.keeper_username,
            "phone": station.phone, "commission_bp": station.commission_bp,
            "active": station.active}


def network(session: Session, county_code: str) -> dict:
    """A county's three-level network: its centre, township stations with their
    village stations, and the villages still without one."""
    county = _region(session, county_code, "county_code")
    if county.level is not Level.COUNTY:
        raise InvalidInput(f"{county_code} is a {county.level.value}, not a county",
                           field="county_code")
    stations = {s.region_code: s for s in session.scalars(
        select(Station).where(Station.county_code == county_code))}
    below = session.execute(
        select(Region.code, Region.name, Region.level, Region.parent_code)
        .where(Region.code.like(county_code + "%"), Region.level.in_([Level.TOWNSHIP, Level.VILLAGE]))
        .order_by(Region.code)).all()
    townships = []
    by_code: dict[str, dict] = {}
    for code, name, level, parent in below:
        s = stations.get(code)
        node = {"region_code": code, "name": name,
                "station": station_view(s) if s is not None else None}
        if level is Level.TOWNSHIP:
            node["villages"] = []
            by_code[code] = node
            townships.append(node)
        elif parent in by_code:
            by_code[parent]["villages"].append(node)
    centre = stations.get(county_code)
    counts = {lv.value: sum(1 for s in stations.values() if s.level is lv and s.active)
              for lv in StationLevel}
    return {"county_code": county_code, "name": county.name,
            "centre": station_view(centre) if centre is not None else None,
            "townships": townships, "active_stations": counts}


# --- delivery zones and quotes -----------------------------------------------------------

_ZONE_OF_LEVEL = {Level.COUNTY: Zone.COUNTY_TOWN, Level.TOWNSHIP: Zone.TOWNSHIP,
                  Level.VILLAGE: Zone.VILLAGE}


def set_zone(session: Session, actor: Actor, region_code: str, zone: Zone | str, *, fee_fen: int,
             days: int, base_weight_g: int = 1000, per_kg_fen: int = 0,
             door_delivery: bool = True) -> DeliveryZone:
    """Set the fee and time to a zone for a county (the default of its townships and
    villages) or for one township (overriding the county's for that township)."""
    require_role(actor, *OFFICERS)
    region = _region(session, region_code)
    require_region(actor, region_code)
    try:
        zone = Zone(zone)
    except ValueError:
        raise InvalidInput(f"unknown zone {zone!r}; one of: {', '.join(z.value for z in Zone)}",
                           field="zone") from None
    if region.level not in (Level.COUNTY, Level.TOWNSHIP):
        raise InvalidInput(f"{region_code} is a {region.level.value}: zones are set for a county "
                           "or a township", field="region_code")
    if region.level is Level.TOWNSHIP and zone is Zone.COUNTY_TOWN:
        raise InvalidInput("a township sets only its township and village zones", field="zone")
    _fen(fee_fen, "fee_fen")
    _fen(per_kg_fen, "per_kg_fen")
    _fen(base_weight_g, "base_weight_g")
    if type(days) is not int or not 0 <= days <= 365:
        raise InvalidInput("days must be an integer from 0 to 365", field="days")
    row = session.scalar(select(DeliveryZone).where(DeliveryZone.region_code == region_code,
                                                    DeliveryZone.zone == zone))
    if row is None:
        row = DeliveryZone(region_code=region_code, county_code=region_code[:6], zone=zone)
        session.add(row)
    row.fee_fen, row.days, row.base_weight_g, row.per_kg_fen = fee_fen, days, base_weight_g, per_kg_fen
    row.door_delivery, row.updated_by, row.updated_at = bool(door_delivery), actor.username, utcnow()
    session.flush()
    audit(session, actor, "set", "delivery_zone", row.id,
          {"region_code": region_code, "zone": zone.value, "fee_fen": fee_fen, "days": days,
           "door_delivery": bool(door_delivery)})
    return row


def remove_zone(session: Session, actor: Actor, region_code: str, zone: Zone | str) -> bool:
    require_role(actor, *OFFICERS)
    require_region(actor, region_code)
    try:
        zone = Zone(zone)
    except ValueError:
        raise InvalidInput(f"unknown zone {zone!r}", field="zone") from None
    row = session.scalar(select(DeliveryZone).where(DeliveryZone.region_code == region_code,
                                                    DeliveryZone.zone == zone))
    if row is None:
        return False
    session.delete(row)
    audit(session, actor, "delete", "delivery_zone", row.id,
          {"region_code": region_code, "zone": zone.value})
    session.flush()
    return True


def zone_view(z: DeliveryZone) -> dict:
    return {"region_code": z.region_code, "zone": z.zone.value, "fee_fen": z.fee_fen,
            "days": z.days, "base_weight_g": z.base_weight_g, "per_kg_fen": z.per_kg_fen,
            "door_delivery": z.door_delivery}


def zones(session: Session, county_code: str) -> list[dict]:
    """The county's zones and its townships' overrides."""
    rows = session.scalars(select(DeliveryZone).where(DeliveryZone.county_code == county_code)
                           .order_by(DeliveryZone.region_code, DeliveryZone.zone))
    return [zone_view(z) for z in rows]


@dataclass(frozen=True)
class DeliveryQuote:
    fee_fen: int
    days: int
    pickup_station_id: int | None  # set when the parcel waits at a station
    zone: str


def _ancestors(code: str, level: Level) -> list[str]:
    """The region itself, then its township and county: most specific first."""
    if level is Level.VILLAGE:
        return [code, code[:9] + "000", code[:6]]
    if level is Level.TOWNSHIP:
        return [code, code[:6]]
    return [code]


@dataclass(frozen=True)
class _Route:
    """Where a parcel to one region goes and what the zone's rule charges."""
    zone: Zone
    fee_fen: int
    per_kg_fen: int
    base_weight_g: int
    days: int
    pickup_station_id: int | None


_routes = ReferenceCache("delivery routes", DeliveryZone, Station, Region)


def quote_delivery(session: Session, ship_to_code: str, weight_g: int) -> DeliveryQuote:
    """Fee, expected days and pickup station for a parcel of ``weight_g`` to a region.

    Plain reads, no locks: the checkout calls it inside its own transaction.  A
    township's rule for the zone wins over its county's.  Above the rule's base weight
    each started kilogram adds ``per_kg_fen``.  Where couriers stop short of the address
    the parcel waits at the nearest active station: the village's own, else its
    township's, else the county centre.  The route to a region is kept for a few
    seconds (``ecpa.refcache``): every checkout asks for it."""
    if type(weight_g) is not int or weight_g < 0:
        raise InvalidInput("weight_g must be a non-negative integer (grams)", field="weight_g")
    return _charge(_routes.get(session, ship_to_code, lambda: _route(session, ship_to_code)),
                   weight_g)


def cached_quote(url: str, ship_to_code: str, weight_g: int) -> DeliveryQuote | None:
    """The quote from a route kept in memory, or None when it is not (the checkout's
    fast lane, which cannot query synchronously, then takes the ordinary way)."""
    route = _routes.peek(url, ship_to_code)
    return None if route is MISSING else _charge(route, weight_g)


def _charge(route: _Route, weight_g: int) -> DeliveryQuote:
    extra_kg = -(-max(0, weight_g - route.base_weight_g) // 1000)  # started kilograms
    return DeliveryQuote(fee_fen=route.fee_fen + extra_kg * route.per_kg_fen, days=route.days,
                         pickup_station_id=route.pickup_station_id, zone=route.zone.value)


def _route(session: Session, ship_to_code: str) -> _Route:
    level = session.scalar(select(Region.level).where(Region.code == ship_to_code))
    if level is None:
        raise NoDeliveryZone(f"unknown ship-to region {ship_to_code}", field="ship_to_code",
                             region=ship_to_code)
    zone = _ZONE_OF_LEVEL.get(level)
    if zone is None:
        raise NoDeliveryZone(f"ship-to region {ship_to_code} is a {level.value}: give a county, "
                             "township or village", field="ship_to_code", region=ship_to_code)
    chain = _ancestors(ship_to_code, level)
    rules = {z.region_code: z for z in session.scalars(
        select(DeliveryZone).where(DeliveryZone.region_code.in_(chain), DeliveryZone.zone == zone))}
    rule = next((rules[c] for c in chain if c in rules), None)
    if rule is None:
        raise NoDeliveryZone(
            f"no delivery zone covers {ship_to_code} ({zone.value}): county {ship_to_code[:6]} "
            f"has no {zone.value} zone", field="ship_to_code", region=ship_to_code,
            zone=zone.value)
    pickup = None
    if not rule.door_delivery:
        found = dict(session.execute(select(Station.region_code, Station.id).where(
            Station.region_code.in_(chain), Station.active.is_(True))).all())
        pickup = next((found[c] for c in chain if c in found), None)
        if pickup is None:
            raise NoDeliveryZone(
                f"couriers do not reach {ship_to_code} and no active station near it holds "
                "parcels for pickup", field="ship_to_code", region=ship_to_code)
    return _Route(zone, rule.fee_fen, rule.per_kg_fen, rule.base_weight_g, rule.days, pickup)



# --- the keeper at work ------------------------------------------------------------------

def _keeper_station(session: Session, actor: Actor, station_id: int) -> Station:
    """The station, which the actor keeps (administrators act for any keeper)."""
    require_role(actor, Role.STATION_KEEPER, Role.ADMINISTRATOR)
    station = get_station(session, station_id)
    if actor.role is Role.STATION_KEEPER and station.keeper_username != actor.username:
        raise PermissionDenied(f"you do not keep station {station_id}", station_id=station_id)
    if not station.active:
        raise Conflict(f"station {station_id} is closed", station_id=station_id)
    return station


def _station_household(session: Session, station: Station, household_id: int) -> Household:
    """A registered household the station serves: it lives in the station's region."""
    household = session.get(Household, household_id)
    if household is None:
        raise NotFound(f"no household {household_id}", field="household_id")
    if not household.village_code.startswith(scope_prefix(station.region_code)):
        raise PermissionDenied(
            f"household {household_id} lives in {household.village_code}, outside station "
            f"{station.id}'s region {station.region_code}", field="household_id")
    return household


def _order(session: Session, order_id: int):
    from ..market.models import Order

    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    return order


def assisted_view(a: AssistedOrder) -> dict:
    return {"order_id": a.order_id, "station_id": a.station_id, "keeper": a.keeper_username,
            "household_id": a.household_id, "member_id": a.member_id, "items_fen": a.items_fen,
            "commission_bp": a.commission_bp, "commission_fen": a.commission_fen,
            "paid": a.paid_at is not None, "transaction_id": a.transaction_id}


def record_assisted_order(session: Session, actor: Actor, station_id: int, household_id: int,
                          order_id: int, member_id: int | None = None) -> AssistedOrder:
    """Record that the station's keeper placed ``order_id`` for a household of its
    village, with the commission at the station's current rate.  Recording the same
    order again returns the first record."""
    from ..market.models import OrderState

    station = _keeper_station(session, actor, station_id)
    _station_household(session, station, household_id)
    if member_id is not None:
        member = session.get(Member, member_id)
        if member is None or member.household_id != household_id:
            raise InvalidInput(f"member {member_id} is not in household {household_id}",
                               field="member_id")
    order = _order(session, order_id)
    existing = session.scalar(select(AssistedOrder).where(AssistedOrder.order_id == order_id))
    if existing is not None:
        if (existing.station_id, existing.household_id) != (station_id, household_id):
            raise Conflict(f"order {order_id} is recorded as assisted by station "
                           f"{existing.station_id} for household {existing.household_id}",
                           field="order_id")
        return existing
    # Only an order the checkout marked as placed by this keeper earns its commission.
    if order.assisted_by is None or order.assisted_by != station.keeper_username:
        raise Conflict(f"order {order_id} was not placed by the keeper of station {station_id} "
                       f"(assisted_by={order.assisted_by!r})", field="order_id")
    if order.state in (OrderState.CANCELLED, OrderState.EXPIRED):
        raise Conflict(f"order {order_id} is {order.state.value}", field="order_id")
    row = AssistedOrder(order_id=order_id, station_id=station_id,
                        keeper_username=station.keeper_username, household_id=household_id,
                        member_id=member_id, items_fen=order.items_fen,
                        commission_bp=station.commission_bp,
                        commission_fen=order.items_fen * station.commission_bp // 10000)
    session.add(row)
    session.flush()
    audit(session, actor, "create", "assisted_order", order_id,
          {"station_id": station_id, "household_id": household_id,
           "commission_fen": row.commission_fen})
    return row


def pay_commission(session: Session, actor: Actor, order_id: int) -> AssistedOrder:
    """Post the keeper's commission on a completed assisted order, once: from the
    platform's commission account to the station's, less the share of refunded lines.
    Again: nothing more happens."""
    from ..market.models import OrderLine, OrderState

    require_role(actor, *OFFICERS)
    row = session.scalar(select(AssistedOrder).where(AssistedOrder.order_id == order_id)
                         .with_for_update())
    if row is None:
        raise NotFound(f"order {order_id} is not an assisted purchase", field="order_id")
    station = get_station(session, row.station_id)
    require_region(actor, station.region_code)
    if row.paid_at is not None:
        return row
    order = _order(session, order_id)
    if order.state is not OrderState.COMPLETED:
        raise Conflict(f"order {order_id} is {order.state.value}: the commission is paid when "
                       "it completes", field="order_id")
    # No commission on goods that went back: refunded lines leave the base.
    refunded = session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity * OrderLine.unit_price_fen), 0))
        .where(OrderLine.order_id == order_id, OrderLine.refunded.is_(True)))
    if refunded:
        row.commission_fen = max(0, row.items_fen - int(refunded)) * row.commission_bp // 10000
    if row.commission_fen > 0:
        open_account(session, COMMISSION_ACCOUNT, "commissions of service stations",
                     AccountKind.PLATFORM)
        open_account(session, station_account(station.id), f"station {station.name}",
                     AccountKind.SELLER, region_code=station.region_code)
        day = (order.completed_at or utcnow()).date()
        txn = post(session, _books(actor), f"station:{station.id}:commission:{order_id}", day,
                   f"commission of station {station.name} on assisted order {order_id}",
                   [Leg(COMMISSION_ACCOUNT, row.commission_fen),
                    Leg(station_account(station.id), -row.commission_fen)])
        row.transaction_id = txn.id
    row.paid_at = utcnow()
    session.flush()
    audit(session, actor, "pay", "station_commission", order_id,
          {"station_id": station.id, "commission_fen": row.commission_fen})
    return row


def on_lines_returned(session: Session, order_id: int, return_id: int) -> None:
    """Hook for the marketplace: lines of a completed order were returned and refunded
    (same transaction).  The commission is recomputed on what was kept, as at
    completion, and what was paid on the returned goods goes back to the platform."""
    from ..market.models import OrderLine

    row = session.scalar(select(AssistedOrder).where(AssistedOrder.order_id == order_id)
                         .with_for_update())
    if row is None or row.paid_at is None or not row.commission_fen:
        return
    refunded = session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity * OrderLine.unit_price_fen), 0))
        .where(OrderLine.order_id == order_id, OrderLine.refunded.is_(True)))
    kept = max(0, row.items_fen - int(refunded)) * row.commission_bp // 10000
    back = row.commission_fen - kept
    if back <= 0:
        return
    station = get_station(session, row.station_id)
    actor = system_actor("stations")
    post(session, _books(actor), f"station:{station.id}:commission:{order_id}:return:{return_id}",
         utcnow().date(), f"commission of station {station.name} on goods returned from "
         f"assisted order {order_id}",
         [Leg(station_account(station.id), back), Leg(COMMISSION_ACCOUNT, -back)])
    row.commission_fen = kept
    session.flush()
    audit(session, actor, "return", "station_commission", order_id,
          {"station_id": station.id, "returned_fen": back, "commission_fen": kept})


def on_order_completed(session: Session, order_id: int) -> AssistedOrder | None:
    """Hook for the marketplace: call when an order turns completed (same transaction).
    Pays the commission if the order was an assisted purchase; otherwise does nothing."""
    if session.scalar(select(AssistedOrder.id).where(AssistedOrder.order_id == order_id)) is None:
        return None
    return pay_commission(session, system_actor("stations"), order_id)


def assisted_checkout(session_factory: Callable[[], Session], actor: Actor, station_id: int,
                      household_id: int, key: str, items: list | None = None, *,
                      member_id: int | None = None, **checkout_args) -> dict:
    """A keeper's purchase for a villager, end to end: the household is checked before
    any stock is reserved, the marketplace's checkout runs (its own transaction) with
    ``assisted_by`` set and the household's village as default ship-to, then the
    assistance is recorded.  Both steps are idempotent, so a retry after a crash in
    between finishes the job.  The only place this package calls into the checkout."""
    from ..market import orders  # the marketplace's checkout, imported late

    with session_factory() as s:
        station = _keeper_station(s, actor, station_id)
        household = _station_household(s, station, household_id)
        keeper, village = station.keeper_username, household.village_code
    checkout_args.setdefault("ship_to_code", village)
    order = orders.checkout(session_factory, actor, key, items, assisted_by=keeper,
                            **checkout_args)
    with session_factory() as s, s.begin():
        record_assisted_order(s, actor, station_id, household_id, order["id"], member_id)
    return order


# --- consignment: villagers' products taken in for sale ----------------------------------

def consignment_view(c: Consignment) -> dict:
    return {"id": c.id, "station_id": c.station_id, "key": c.key, "household_id": c.household_id,
            "product": c.product, "quantity": c.quantity, "unit": c.unit,
            "price_fen": c.price_fen, "received_on": c.received_on.isoformat(),
            "sold_quantity": c.sold_quantity, "remaining": c.quantity - c.sold_quantity}


def receive(session: Session, actor: Actor, station_id: int, household_id: int, *, key: str,
            product: str, quantity: int, unit: str, price_fen: int,
            received_on: date) -> Consignment:
    """Take a quantity of a household's product in at the station at an agreed price
    per unit.  The same ``key`` again returns the first receipt."""
    station = _keeper_station(session, actor, station_id)
    _station_household(session, station, household_id)
    if not key or len(key) > 100:
        raise InvalidInput("a key of 1 to 100 characters is required", field="key")
    _fen(quantity, "quantity", positive=True)
    _fen(price_fen, "price_fen", positive=True)
    if not product.strip():
        raise InvalidInput("what product?", field="product")
    if not unit.strip():
        raise InvalidInput("in what unit?", field="unit")
    existing = session.scalar(select(Consignment).where(Consignment.station_id == station_id,
                                                        Consignment.key == key))
    if existing is not None:
        same = (existing.household_id, existing.product, existing.quantity, existing.unit,
                existing.price_fen, existing.received_on) == (
                    household_id, product.strip(), quantity, unit.strip(), price_fen, received_on)
        if not same:
            raise Conflict(f"key {key!r} was used for another receipt", field="key")
        return existing
    row = Consignment(station_id=station_id, key=key, household_id=household_id,
                      product=product.strip(), quantity=quantity, unit=unit.strip(),
                      price_fen=price_fen, received_on=received_on, sold_quantity=0,
                      received_by=actor.username)
    session.add(row)
    session.flush()
    audit(session, actor, "create", "consignment", row.id,
          {"household_id": household_id, "quantity": quantity, "price_fen": price_fen})
    return row


def sell(session: Session, actor: Actor, station_id: int, consignment_id: int, *, key: str,
         quantity: int, sold_on: date, unit_price_fen: int | None = None) -> ConsignmentSale:
    """Record a sale from a consignment (at the agreed price unless another is given) and
    credit the household with it: its sales income, traced.  Never more than was taken
    in; the same ``key`` again returns the first sale."""
    station = _keeper_station(session, actor, station_id)
    # Locked: two sales of the last units cannot both pass the check.
    c = session.scalar(select(Consignment).where(Consignment.id == consignment_id)
                       .with_for_update())
    if c is None or c.station_id != station_id:
        raise NotFound(f"no consignment {consignment_id} at station {station_id}")
    if not key or len(key) > 100:
        raise InvalidInput("a key of 1 to 100 characters is required", field="key")
    _fen(quantity, "quantity", positive=True)
    price = c.price_fen if unit_price_fen is None else _fen(unit_price_fen, "unit_price_fen",
                                                            positive=True)
    amount = quantity * price
    existing = session.scalar(select(ConsignmentSale).where(
        ConsignmentSale.consignment_id == consignment_id, ConsignmentSale.key == key))
    if existing is not None:
        if (existing.quantity, existing.amount_fen, existing.sold_on) != (quantity, amount, sold_on):
            raise Conflict(f"key {key!r} was used for another sale", field="key")
        return existing
    remaining = c.quantity - c.sold_quantity
    if quantity > remaining:
        raise InvalidInput(f"only {remaining} {c.unit} of consignment {c.id} are left to sell",
                           field="quantity", remaining=remaining)
    c.sold_quantity += quantity
    sale = ConsignmentSale(consignment_id=c.id, key=key, quantity=quantity, amount_fen=amount,
                           sold_on=sold_on, recorded_by=actor.username)
    session.add(sale)
    session.flush()
    hh = household_account(station_id, c.household_id)
    open_account(session, hh, f"household {c.household_id} at station {station.name}",
                 AccountKind.HOUSEHOLD, household_id=c.household_id)
    open_account(session, consignment_account(station_id), f"station {station.name}: consignment",
                 AccountKind.SELLER, region_code=station.region_code)
    txn = post(session, _books(actor), f"station:{station_id}:consignment:{c.id}:sale:{key}",
               sold_on, f"{quantity} {c.unit} {c.product} sold at station {station.name}",
               [Leg(consignment_account(station_id), amount),
                Leg(hh, -amount, c.household_id, Channel.INDUSTRY)])
    sale.transaction_id = txn.id
    session.flush()
    audit(session, actor, "create", "consignment_sale", sale.id,
          {"consignment_id": c.id, "quantity": quantity, "amount_fen": amount})
    return sale


def owed(session: Session, station_id: int, household_id: int) -> int:
    """What the station holds for the household from its sales, in fen."""
    code = household_account(station_id, household_id)
    if session.scalar(select(Account.id).where(Account.code == code)) is None:
        return 0
    return -balance(session, code)


def pay_household(session: Session, actor: Actor, station_id: int, household_id: int, *,
                  key: str, day: date) -> Transaction | None:
    """Hand the household everything the station holds for it.  The same ``key`` again
    returns the first payout; None when nothing is owed."""
    station = _keeper_station(session, actor, station_id)
    _station_household(session, station, household_id)
    if not key or len(key) > 100:
        raise InvalidInput("a key of 1 to 100 characters is required", field="key")
    txn_key = f"station:{station_id}:payout:{household_id}:{key}"
    done = session.scalar(select(Transaction).where(Transaction.key == txn_key))
    if done is not None:
        return done
    code = household_account(station_id, household_id)
    # Locked: two payouts with different keys cannot both pay the same balance.
    if session.scalar(select(Account.id).where(Account.code == code).with_for_update()) is None:
        return None
    amount = -balance(session, code)
    if amount <= 0:
        return None
    # No channel: handing over cash is not new income, the sale already counted.
    txn = post(session, _books(actor), txn_key, day,
               f"station {station.name} pays household {household_id} for its goods sold",
               [Leg(code, amount), Leg(consignment_account(station_id), -amount)])
    audit(session, actor, "pay", "consignment_payout", txn.id,
          {"station_id": station_id, "household_id": household_id, "amount_fen": amount})
    return txn


def consignments(session: Session, actor: Actor, station_id: int) -> list[dict]:
    """What the station holds for sale, with sold quantities and what it owes each household."""
    station = get_station(session, station_id)
    if actor.role is Role.STATION_KEEPER:
        if station.keeper_username != actor.username:
            raise PermissionDenied(f"you do not keep station {station_id}")
    else:
        require_role(actor, *OFFICERS)
        require_region(actor, station.region_code)
    rows = [consignment_view(c) for c in session.scalars(
        select(Consignment).where(Consignment.station_id == station_id).order_by(Consignment.id))]
    for r in rows:
        r["owed_to_household_fen"] = owed(session, station_id, r["household_id"])
    return rows

