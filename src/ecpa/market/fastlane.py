"""The checkout's fast lane: on PostgreSQL, the common checkout in one statement.

On a poverty alleviation day most checkouts are alike: a signed-in buyer, a few listed
SKUs of products on sale, a delivery route already asked for.  For those the rules of
``orders.checkout`` are applied here in Python to facts kept in memory (each SKU's
price, weight, product and seller; the delivery route; the campaigns), and the database
is asked once, in autocommit, to

- lock the SKU rows in ascending id order (as every path that locks SKUs does),
- check under the lock every fact the price was computed from (price, weight, product,
  seller, product on sale, seller's certification, origin), the stock, and that no SKU
  is a pre-sale's,
- and only if all of that holds take the stock, insert the order and its lines (each
  line with the seller's registered poor households) and return them.

Either the whole order is written or nothing is.  Whenever the lane cannot answer — a
fact not in memory or out of date, short stock, a campaign with a per-buyer limit, a
pre-sale SKU, the cart instead of listed items, a repeated checkout key, any database
error — it gives the request to the ordinary route unchanged, which decides and answers
(also with the right error).  So the lane changes how fast a checkout is, never what it
does; ``tests/test_fastlane.py`` checks both give the same orders.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from ..db import session_scope, utcnow
from ..errors import EcpaError, InvalidInput
from ..people.access import Actor
from ..refcache import MISSING, ReferenceCache
from . import orders
from .models import OrderState, Product, Seller, Sku

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SkuFacts:
    """What a checkout's price and lines are computed from (product and seller fields by
    the names the campaign rules read)."""
    id: int
    price_fen: int
    weight_g: int
    product_id: int
    active: bool
    seller_id: int
    origin_code: str
    poverty_linked: bool


_facts = ReferenceCache("checkout facts", Sku, Product, Seller)

FACTS = """
SELECT k.id, k.price_fen, k.weight_g, k.product_id, p.active, p.seller_id, p.origin_code,
       s.poverty_linked
FROM market_sku k JOIN market_product p ON p.id = k.product_id
JOIN market_seller s ON s.id = p.seller_id
WHERE k.id = ANY(%(skus)s::integer[])
"""

# The checkout in one statement.  ``locked`` is materialised so that its rows are locked
# once, in id order, before anything is checked or written; the data-modifying parts
# run only when ``verdict`` says yes, so a no writes nothing.  A line's households: the
# seller's linked households with a poverty status (as catalog.poor_households_of).
RESERVE = """
WITH want AS (
    SELECT * FROM json_to_recordset(%(lines)s::json)
        AS w(sku_id integer, qty integer, price bigint, off bigint, product_id integer,
             seller_id integer, weight_g integer, origin_code text, linked boolean)
), locked AS MATERIALIZED (
    SELECT id, stock, price_fen, weight_g, product_id FROM market_sku
    WHERE id = ANY(%(skus)s::integer[]) ORDER BY id FOR UPDATE
), verdict AS (
    SELECT count(*) = (SELECT count(*) FROM want)
           AND coalesce(bool_and(l.stock >= w.qty AND l.price_fen = w.price
                                 AND l.weight_g = w.weight_g AND l.product_id = w.product_id
                                 AND p.active AND p.seller_id = w.seller_id
                                 AND p.origin_code = w.origin_code
                                 AND s.poverty_linked = w.linked), false)
           AND NOT EXISTS (SELECT 1 FROM campaign_presale
                           WHERE sku_id IN (SELECT sku_id FROM want)) AS ok
    FROM locked l JOIN want w ON w.sku_id = l.id
    JOIN market_product p ON p.id = l.product_id JOIN market_seller s ON s.id = p.seller_id
), taken AS (
    UPDATE market_sku k SET stock = k.stock - w.qty FROM want w, verdict v
    WHERE v.ok AND k.id = ANY(%(skus)s::integer[]) AND k.id = w.sku_id
), placed AS (
    INSERT INTO market_order (buyer, checkout_key, state, items_fen, discount_fen,
        delivery_fee_fen, total_fen, refunded_fen, ship_to_code, ship_to_address,
        contact_name, delivery_days, pickup_station_id, assisted_by, campaign_id,
        reserved_until, created_at)
    SELECT %(buyer)s, %(checkout_key)s, %(state)s, %(items_fen)s, %(discount_fen)s,
        %(delivery_fee_fen)s, %(total_fen)s, 0, %(ship_to_code)s, %(ship_to_address)s,
        %(contact_name)s, %(delivery_days)s, %(pickup_station_id)s, NULL, %(campaign_id)s,
        %(reserved_until)s, %(created_at)s
    FROM verdict WHERE ok
    RETURNING id
), lines AS (
    INSERT INTO market_order_line (order_id, sku_id, seller_id, quantity, unit_price_fen,
        discount_fen, amount_fen, refunded, households)
    SELECT o.id, w.sku_id, w.seller_id, w.qty, w.price, w.off, w.price * w.qty - w.off, false,
        coalesce((SELECT json_agg(k.household_id ORDER BY k.household_id)
                  FROM market_seller_link k
                  WHERE k.seller_id = w.seller_id
                    AND EXISTS (SELECT 1 FROM status_event e
                                WHERE e.household_id = k.household_id)), '[]'::json)
    FROM placed o, want w ORDER BY w.sku_id
    RETURNING order_id, id, sku_id, households
)
SELECT order_id, id, sku_id, households FROM lines ORDER BY sku_id
"""


# Planning the statement anew for its parameters costs more than running it (1.7 ms
# of backend CPU a checkout against 0.66 ms, run alone in a loop).  Left to choose,
# PostgreSQL sometimes keeps planning it for each call, depending on the first few;
# the plan does not depend on the values (ids looked up by key in small joins).
#
# A kept plan must find every row by key.  Made while the SKU table is a page or two,
# it would scan the table, and keep scanning it after the table has grown, or filled
# with the dead versions of a few hot SKUs' rows updated hundreds of times a second
# (measured: such scans became most of PostgreSQL's CPU a checkout).  So the SKUs come
# as an id array the primary key answers (``id = ANY``), and the lane's connections
# plan without sequential scans.
LANE_PLANNING = "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off"

# A reservation's commit need not wait for the disk (``checkout_lane_wait_for_flush``):
# the SKU rows are then free as soon as it commits, instead of after the flush that the
# next checkouts of the same SKUs queue behind.  What a crash of the database could
# lose is the last fraction of a second of reservations, whole (order, lines and the
# stock they took, together); never a payment, whose own commit waits for the disk and
# so for every reservation before it.
NO_FLUSH_WAIT = " -c synchronous_commit=off"


class FastLane:
    """One per server process, opened and closed with the application (its lifespan):
    a small pool of autocommit connections on the process's event loop."""

    def __init__(self, database_url: str, pool_size: int, wait_for_flush: bool = True) -> None:
        url = make_url(database_url)
        # The key the ordinary path's caches use (ReferenceCache keys by the URL's text).
        self.cache_key = str(url)
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.pool = AsyncConnectionPool(conninfo, min_size=1, max_size=pool_size, open=False,
                                        kwargs={"autocommit": True, "options": LANE_PLANNING + (
                                            "" if wait_for_flush else NO_FLUSH_WAIT)},
                                        name="checkout-fast-lane")
        # How each checkout went (placed, refused, why it took the ordinary way): logged
        # at shutdown, read by the tests to know the lane answered.
        self.outcomes: Counter[str] = Counter()

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()
        log.info("checkout fast lane: %s", dict(self.outcomes))

    async def checkout(self, actor: Actor, key: str, items: list[orders.Item], *,
                       ship_to_code: str, address: str, contact_name: str) -> dict | None:
        """The order (as ``orders.checkout`` returns it), or None: take the ordinary way."""
        try:
            wanted = orders._items(items)
        except InvalidInput:
            return None
        now = utcnow()
        try:
            facts = await self._facts_of([i.sku_id for i in wanted])
            if facts is None or not all(f.active for f in facts):
                self.outcomes["facts"] += 1
                return None
            # Imported here as orders.checkout's hooks are: campaigns and stations build
            # on the market.
            from ..campaigns.service import (
                active_campaigns,
                best_campaign,
                cached_campaigns,
            )
            from ..stations.service import cached_quote
            weight = sum(f.weight_g * i.quantity for f, i in zip(facts, wanted))
            quote = cached_quote(self.cache_key, ship_to_code, weight)
            campaigns = cached_campaigns(self.cache_key)
            if quote is None or campaigns is None:
                # Read them the ordinary way (in a worker thread), into the same caches.
                if not await run_in_threadpool(_keep_reference, ship_to_code):
                    self.outcomes["no route"] += 1
                    return None
                quote = cached_quote(self.cache_key, ship_to_code, weight)
                campaigns = cached_campaigns(self.cache_key)
                if quote is None or campaigns is None:
                    self.outcomes["reference not kept"] += 1
                    return None
            amounts = [f.price_fen * i.quantity for f, i in zip(facts, wanted)]
            off, campaign_id = [0] * len(wanted), None
            best = best_campaign(active_campaigns(campaigns, now),
                                 [(a, f, f) for a, f in zip(amounts, facts)])
            if best is not None:
                campaign, off, _ = best
                if campaign.per_buyer_limit is not None:
                    self.outcomes["per-buyer limit"] += 1
                    return None  # the buyer's row is locked and counted the ordinary way
                campaign_id = campaign.id
            items_fen, discount_fen = sum(amounts), sum(off)
            order = {"buyer": actor.username, "checkout_key": key,
                     "state": OrderState.PENDING_PAYMENT.value, "items_fen": items_fen,
                     "discount_fen": discount_fen, "delivery_fee_fen": quote.fee_fen,
                     "total_fen": items_fen - discount_fen + quote.fee_fen, "refunded_fen": 0,
                     "ship_to_code": ship_to_code, "ship_to_address": address,
                     "contact_name": contact_name, "delivery_days": quote.days,
                     "pickup_station_id": quote.pickup_station_id, "assisted_by": None,
                     "campaign_id": campaign_id, "reserved_until": now + orders.RESERVATION,
                     "created_at": now}
            # The lines as one JSON parameter: adapting nine arrays cost more Python
            # than the rest of the request.
            params = {**order, "skus": [f.id for f in facts], "lines": json.dumps([
                {"sku_id": f.id, "qty": i.quantity, "price": f.price_fen, "off": o,
                 "product_id": f.product_id, "seller_id": f.seller_id, "weight_g": f.weight_g,
                 "origin_code": f.origin_code, "linked": f.poverty_linked}
                for f, i, o in zip(facts, wanted, off)])}
            async with self.pool.connection() as conn:
                rows = await (await conn.execute(RESERVE, params, prepare=True)).fetchall()
        except psycopg.Error as exc:
            # A repeated key (unique buyer + key), a lost connection, anything: nothing
            # was written by this statement, or if it was, its key finds it.
            log.debug("checkout fast lane: %s", exc)
            self.outcomes[type(exc).__name__] += 1
            return None
        if not rows:
            self.outcomes["refused"] += 1
            return None
        self.outcomes["placed"] += 1
        lines = [{"id": line_id, "sku_id": f.id, "seller_id": f.seller_id, "quantity": i.quantity,
                  "unit_price_fen": f.price_fen, "discount_fen": o,
                  "amount_fen": f.price_fen * i.quantity - o, "refunded": False,
                  "households": households}
                 for (_, line_id, _, households), f, i, o in zip(rows, facts, wanted, off)]
        return orders._view(rows[0][0], order, lines)

    async def _facts_of(self, sku_ids: list[int]) -> list[SkuFacts] | None:
        found = [_facts.peek(self.cache_key, sid) for sid in sku_ids]
        missing = [sid for sid, f in zip(sku_ids, found) if f is MISSING]
        if missing:
            async with self.pool.connection() as conn:
                cur = await conn.execute(FACTS, {"skus": missing}, prepare=True)
                for row in await cur.fetchall():
                    _facts.put(self.cache_key, row[0], SkuFacts(*row))
            found = [_facts.peek(self.cache_key, sid) for sid in sku_ids]
            if any(f is MISSING for f in found):
                return None  # an unknown SKU (or the cache is off): the ordinary way says so
        return found


def _keep_reference(ship_to_code: str) -> bool:
    """Read the delivery route and the campaigns into their in-memory copies; False
    when there is no route (the ordinary way then says why)."""
    from ..campaigns.service import keep_campaigns
    from ..stations.service import quote_delivery
    try:
        with session_scope() as s:
            quote_delivery(s, ship_to_code, 0)
            keep_campaigns(s)
    except EcpaError:
        return False
    return True
