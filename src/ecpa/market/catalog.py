"""Sellers, their poverty-linked certificate, county pavilions, products and SKUs, search.

A seller is a household, a cooperative or an enterprise in a region, managed by one user.
A seller linked to registered poor households (members, suppliers, employees) may be
certified by a county officer as poverty-linked (seed 002 §3.2: consumers buy to help,
so the mark must be earned and can be revoked); its products carry the mark.
"""

from __future__ import annotations

import functools

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..db import any_of
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..regions.models import Region
from ..registry.models import Household, Organisation, OrganisationKind
from .models import (
    Category,
    Certification,
    LinkKind,
    Pavilion,
    Product,
    Seller,
    SellerKind,
    SellerLink,
    Sku,
)

OFFICERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
SELLER_ROLES = (*OFFICERS, Role.COOPERATIVE_MANAGER, Role.ENTERPRISE, Role.VILLAGE_CADRE)


def _region(session: Session, code: str, field: str) -> Region:
    region = session.get(Region, code)
    if region is None:
        raise InvalidInput(f"no region {code}", field=field, value=code)
    return region


def create_seller(session: Session, actor: Actor, *, kind: SellerKind | str, name: str,
                  region_code: str, manager_username: str | None = None,
                  household_id: int | None = None, organisation_id: int | None = None) -> Seller:
    require_role(actor, *SELLER_ROLES)
    try:
        kind = SellerKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown seller kind {kind!r}", field="kind") from None
    if not name.strip():
        raise InvalidInput("a seller needs a name", field="name")
    _region(session, region_code, "region_code")
    require_region(actor, region_code)
    if kind is SellerKind.HOUSEHOLD:
        household = session.get(Household, household_id) if household_id else None
        if household is None:
            raise InvalidInput("a household seller needs its household_id", field="household_id")
        require_region(actor, household.village_code)
    elif organisation_id is not None:
        org = session.get(Organisation, organisation_id)
        want = OrganisationKind(kind.value)
        if org is None or org.kind is not want:
            raise InvalidInput(f"no {kind.value} organisation {organisation_id}",
                               field="organisation_id")
    seller = Seller(kind=kind, name=name.strip(), region_code=region_code,
                    household_id=household_id, organisation_id=organisation_id,
                    manager_username=manager_username or actor.username)
    session.add(seller)
    session.flush()
    if kind is SellerKind.HOUSEHOLD:
        session.add(SellerLink(seller_id=seller.id, household_id=household_id, kind=LinkKind.MEMBER))
        session.flush()
    audit(session, actor, "create", "market_seller", seller.id)
    return seller


def seller_of(session: Session, seller_id: int) -> Seller:
    seller = session.get(Seller, seller_id)
    if seller is None:
        raise NotFound(f"no seller {seller_id}", field="seller_id")
    return seller


def require_manager(actor: Actor, seller: Seller) -> None:
    """A seller's own manager, or an officer of its region."""
    if actor.role in OFFICERS and actor.may_reach(seller.region_code):
        return
    if actor.username != seller.manager_username:
        raise PermissionDenied(f"seller {seller.id} is managed by another user", seller=seller.id)


def link_household(session: Session, actor: Actor, seller_id: int, household_id: int,
                   kind: LinkKind | str) -> SellerLink:
    seller = seller_of(session, seller_id)
    require_manager(actor, seller)
    household = session.get(Household, household_id)
    if household is None:
        raise InvalidInput(f"no household {household_id}", field="household_id")
    try:
        kind = LinkKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown link kind {kind!r}", field="kind") from None
    link = session.scalar(select(SellerLink).where(SellerLink.seller_id == seller_id,
                                                   SellerLink.household_id == household_id))
    if link is None:
        link = SellerLink(seller_id=seller_id, household_id=household_id, kind=kind)
        session.add(link)
        session.flush()
    return link


def linked_poor_households(session: Session, seller_id: int) -> list[int]:
    """The seller's linked households that are (or were) registered poor."""
    return poor_households_of(session, [seller_id]).get(seller_id, [])


@functools.cache
def _poor_households_statement(dialect: str):
    from ..registry.models import StatusEvent
    has_status = (select(StatusEvent.id).where(StatusEvent.household_id == SellerLink.household_id)
                  .exists())
    return (select(SellerLink.seller_id, SellerLink.household_id)
            .where(any_of(SellerLink.seller_id, "sellers", dialect), has_status)
            .order_by(SellerLink.seller_id, SellerLink.household_id))


def poor_households_of(session: Session, seller_ids: list[int]) -> dict[int, list[int]]:
    """For several sellers at once (one query): their linked registered poor households."""
    conn = session.connection()
    out: dict[int, list[int]] = {}
    for sid, hid in conn.execute(_poor_households_statement(conn.dialect.name),
                                 {"sellers": list(seller_ids)}):
        out.setdefault(sid, []).append(hid)
    return out


def certify(session: Session, actor: Actor, seller_id: int, note: str = "") -> Certification:
    """A county officer certifies the seller as poverty-linked; it must be linked to at
    least one registered poor household."""
    require_role(actor, *OFFICERS)
    seller = seller_of(session, seller_id)
    require_region(actor, seller.region_code)
    poor = linked_poor_households(session, seller_id)
    if not poor:
        raise Conflict(f"seller {seller_id} is linked to no registered poor household",
                       field="seller_id")
    seller.poverty_linked = True
    row = Certification(seller_id=seller_id, certified=True, households=len(poor), note=note,
                        by=actor.username)
    session.add(row)
    session.flush()
    audit(session, actor, "certify", "market_seller", seller_id, {"households": len(poor)})
    return row


def revoke(session: Session, actor: Actor, seller_id: int, note: str) -> Certification:
    require_role(actor, *OFFICERS)
    seller = seller_of(session, seller_id)
    require_region(actor, seller.region_code)
    if not note.strip():
        raise InvalidInput("say why the certificate is revoked", field="note")
    seller.poverty_linked = False
    row = Certification(seller_id=seller_id, certified=False,
                        households=len(linked_poor_households(session, seller_id)), note=note,
                        by=actor.username)
    session.add(row)
    session.flush()
    audit(session, actor, "revoke", "market_seller", seller_id, {"note": note})
    return row


def add_product(session: Session, actor: Actor, seller_id: int, *, name: str,
                category: Category | str, origin_code: str, description: str = "") -> Product:
    seller = seller_of(session, seller_id)
    require_manager(actor, seller)
    try:
        category = Category(category)
    except ValueError:
        raise InvalidInput(f"unknown category {category!r}; one of "
                           f"{', '.join(c.value for c in Category)}", field="category") from None
    if not name.strip():
        raise InvalidInput("a product needs a name", field="name")
    _region(session, origin_code, "origin_code")
    product = Product(seller_id=seller_id, name=name.strip(), category=category,
                      origin_code=origin_code, description=description)
    session.add(product)
    session.flush()
    return product


def product_of(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"no product {product_id}", field="product_id")
    return product


def add_sku(session: Session, actor: Actor, product_id: int, *, code: str, title: str, unit: str,
            weight_g: int, price_fen: int, stock: int) -> Sku:
    product = product_of(session, product_id)
    require_manager(actor, seller_of(session, product.seller_id))
    for field, value, low in (("weight_g", weight_g, 0), ("price_fen", price_fen, 1),
                              ("stock", stock, 0)):
        if type(value) is not int or value < low:
            raise InvalidInput(f"{field} must be an integer of at least {low}, got {value!r}",
                               field=field)
    if session.scalar(select(Sku.id).where(Sku.code == code)) is not None:
        raise Conflict(f"SKU code {code!r} is taken", field="code")
    sku = Sku(product_id=product_id, code=code, title=title, unit=unit, weight_g=weight_g,
              price_fen=price_fen, stock=stock)
    session.add(sku)
    session.flush()
    return sku


def update_sku(session: Session, actor: Actor, sku_id: int, *, price_fen: int | None = None,
               add_stock: int | None = None) -> Sku:
    """Change the price, or add (or with a negative number take away) stock; stock is
    changed by a relative update so that it never races with checkouts."""
    sku = session.get(Sku, sku_id)
    if sku is None:
        raise NotFound(f"no SKU {sku_id}", field="sku_id")
    require_manager(actor, seller_of(session, product_of(session, sku.product_id).seller_id))
    if price_fen is not None:
        if type(price_fen) is not int or price_fen < 1:
            raise InvalidInput("price_fen must be a positive integer", field="price_fen")
        sku.price_fen = price_fen
    if add_stock:
        if type(add_stock) is not int:
            raise InvalidInput("add_stock must be an integer", field="add_stock")
        session.flush()
        from sqlalchemy import update
        done = session.execute(update(Sku).where(Sku.id == sku_id, Sku.stock + add_stock >= 0)
                               .values(stock=Sku.stock + add_stock))
        if done.rowcount != 1:
            raise Conflict(f"SKU {sku_id} has less than {-add_stock} in stock", field="add_stock")
        session.refresh(sku)
    session.flush()
    return sku


def set_pavilion(session: Session, actor: Actor, county_code: str, title: str, story: str,
                 featured: list[int]) -> Pavilion:
    require_role(actor, *OFFICERS)
    region = _region(session, county_code, "county_code")
    if region.level.value != "county":
        raise InvalidInput(f"{county_code} is a {region.level.value}, not a county",
                           field="county_code")
    require_region(actor, county_code)
    for pid in featured:
        product = session.get(Product, pid)
        if product is None or not product.origin_code.startswith(county_code):
            raise InvalidInput(f"product {pid} does not come from county {county_code}",
                               field="featured", value=pid)
    pavilion = session.scalar(select(Pavilion).where(Pavilion.county_code == county_code))
    if pavilion is None:
        pavilion = Pavilion(county_code=county_code)
        session.add(pavilion)
    pavilion.title, pavilion.story, pavilion.featured = title, story, list(featured)
    session.flush()
    return pavilion


def product_view(session: Session, product: Product, seller: Seller | None = None) -> dict:
    seller = seller or seller_of(session, product.seller_id)
    skus = session.scalars(select(Sku).where(Sku.product_id == product.id).order_by(Sku.id))
    return {"id": product.id, "name": product.name, "category": product.category.value,
            "description": product.description, "origin_code": product.origin_code,
            "seller": {"id": seller.id, "name": seller.name, "kind": seller.kind.value,
                       "poverty_linked": seller.poverty_linked},
            "skus": [{"id": s.id, "code": s.code, "title": s.title, "unit": s.unit,
                      "weight_g": s.weight_g, "price_fen": s.price_fen, "in_stock": s.stock}
                     for s in skus]}


def search(session: Session, *, text: str | None = None, category: str | None = None,
           county: str | None = None, poverty_linked: bool | None = None,
           max_price_fen: int | None = None, limit: int = 20, offset: int = 0) -> dict:
    """Public search of active products, with filters and paging."""
    q = select(Product, Seller).join(Seller, Seller.id == Product.seller_id).where(Product.active)
    if text:
        like = f"%{text.strip()}%"
        q = q.where(or_(Product.name.ilike(like), Product.description.ilike(like)))
    if category:
        try:
            q = q.where(Product.category == Category(category))
        except ValueError:
            raise InvalidInput(f"unknown category {category!r}", field="category") from None
    if county:
        q = q.where(Product.origin_code.startswith(county))
    if poverty_linked is not None:
        q = q.where(Seller.poverty_linked == poverty_linked)
    if max_price_fen is not None:
        q = q.where(Product.id.in_(select(Sku.product_id).where(Sku.price_fen <= max_price_fen)))
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.execute(q.order_by(Seller.poverty_linked.desc(), Product.id)
                           .limit(min(limit, 100)).offset(offset)).all()
    return {"total": total, "items": [product_view(session, p, s) for p, s in rows]}


def pavilion_view(session: Session, county_code: str) -> dict:
    pavilion = session.scalar(select(Pavilion).where(Pavilion.county_code == county_code))
    if pavilion is None:
        raise NotFound(f"county {county_code} has no pavilion", field="county_code")
    featured = [product_view(session, p) for pid in pavilion.featured
                if (p := session.get(Product, pid)) is not None and p.active]
    return {"county_code": county_code, "county": _region(session, county_code, "county_code").name,
            "title": pavilion.title, "story": pavilion.story, "featured": featured,
            "products": search(session, county=county_code, limit=50)["items"]}
