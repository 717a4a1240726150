"""Demand per product (or per county pavilion) from the marketplace's order history, and
a production plan for a cooperative's members for the next cycle."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from ..people.access import Actor, require_region, require_role
from ..people.models import Role
from .forecast import forecast

SOLD = ("paid", "shipped", "delivered", "completed")
PLANNERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.COOPERATIVE_MANAGER, Role.ANALYST)


def _months(start: date, end: date) -> pd.PeriodIndex:
    return pd.period_range(pd.Period(start, "M"), pd.Period(end, "M"), freq="M")


def demand_history(session: Session, *, product_id: int | None = None, county: str | None = None,
                   until: date | None = None) -> tuple[pd.Series, pd.Series]:
    """Units sold per month and the share of each month's days in campaign windows."""
    from ..campaigns.models import Campaign
    from ..market.models import Order, OrderLine, OrderState, Product, Sku
    if (product_id is None) == (county is None):
        raise InvalidInput("give a product or a county", field="product_id")
    q = (select(Order.created_at, OrderLine.quantity)
         .join(OrderLine, OrderLine.order_id == Order.id)
         .join(Sku, Sku.id == OrderLine.sku_id).join(Product, Product.id == Sku.product_id)
         .where(Order.state.in_([OrderState(s) for s in SOLD]), OrderLine.refunded.is_(False)))
    q = q.where(Product.id == product_id) if product_id is not None else q.where(
        Product.origin_code.startswith(county))
    rows = session.execute(q).all()
    until = until or date.today()
    if not rows:
        return pd.Series(dtype=float), pd.Series(dtype=float)
    frame = pd.DataFrame(rows, columns=["at", "units"])
    frame["month"] = pd.PeriodIndex(pd.to_datetime(frame["at"]), freq="M")
    index = _months(frame["at"].min().date(), until)
    sold = frame.groupby("month")["units"].sum().reindex(index, fill_value=0)
    campaigns = session.execute(select(Campaign.starts_at, Campaign.ends_at)).all()
    return sold, campaign_share(index, campaigns)


def campaign_share(index: pd.PeriodIndex, windows) -> pd.Series:
    share = []
    for p in index:
        first, last = p.start_time, p.end_time
        days = 0.0
        for s, e in windows:
            lo, hi = max(first, pd.Timestamp(s)), min(last, pd.Timestamp(e))
            days += max((hi - lo).total_seconds(), 0) / 86400
        share.append(min(days / p.days_in_month, 1.0))
    return pd.Series(share, index=index)


def demand_forecast(session: Session, actor: Actor, *, product_id: int | None = None,
                    county: str | None = None, horizon: int = 6, until: date | None = None) -> dict:
    require_role(actor, *PLANNERS)
    if county:
        require_region(actor, county)
    if not 1 <= horizon <= 24:
        raise InvalidInput("horizon is 1 to 24 months", field="horizon")
    sold, share = demand_history(session, product_id=product_id, county=county, until=until)
    if sold.empty:
        raise NotFound("no sales yet to forecast from", field="product_id" if product_id else "county")
    future_index = pd.period_range(sold.index[-1] + 1, periods=horizon, freq="M")
    from ..campaigns.models import Campaign
    future_share = campaign_share(future_index, session.execute(
        select(Campaign.starts_at, Campaign.ends_at)).all()).to_numpy()
    f = forecast(sold, share, horizon, future_share)
    return {"product_id": product_id, "county": county, "method": f.method,
            "history": [{"month": str(m), "units": int(u), "campaign_share": round(float(c), 3)}
                        for m, u, c in zip(sold.index, sold.to_numpy(), share.to_numpy())],
            "forecast": [{"month": m, "units": round(x, 1), "low80": round(a, 1), "high80": round(b, 1),
                          "low95": round(c, 1), "high95": round(d, 1)}
                         for m, x, a, b, c, d in zip(f.months, f.mean, f.low80, f.high80, f.low95, f.high95)]}


def production_plan(session: Session, actor: Actor, cooperative_id: int, product_id: int,
                    months: int = 6, loss_rate: float = 0.05, until: date | None = None) -> dict:
    """How much the cooperative's members should produce for the next ``months``: the
    forecast demand (and its 80 % band) grossed up for expected losses, shared among the
    members in proportion to their land and labour."""
    from ..cooperatives.models import Membership
    from ..registry.models import Household, Organisation
    require_role(actor, *PLANNERS)
    coop = session.get(Organisation, cooperative_id)
    if coop is None:
        raise NotFound(f"no cooperative {cooperative_id}", field="cooperative_id")
    require_region(actor, coop.region_code)
    if not 0 <= loss_rate < 0.9:
        raise InvalidInput("loss_rate is between 0 and 0.9", field="loss_rate")
    f = demand_forecast(session, actor, product_id=product_id, horizon=months, until=until)
    total = sum(x["units"] for x in f["forecast"]) / (1 - loss_rate)
    low = sum(x["low80"] for x in f["forecast"]) / (1 - loss_rate)
    high = sum(x["high80"] for x in f["forecast"]) / (1 - loss_rate)
    today = until or date.today()
    members = session.execute(
        select(Membership.household_id, Membership.land_centimu, Membership.labourers, Household.number)
        .join(Household, Household.id == Membership.household_id)
        .where(Membership.cooperative_id == cooperative_id, Membership.joined_on <= today,
               (Membership.left_on.is_(None)) | (Membership.left_on > today))
        .order_by(Membership.household_id)).all()
    if not members:
        raise InvalidInput(f"cooperative {cooperative_id} has no members to plan for",
                           field="cooperative_id")
    # Capacity: a mu of land and a labourer count alike (each normalised to its total).
    land = np.array([m.land_centimu for m in members], dtype=float)
    labour = np.array([m.labourers for m in members], dtype=float)
    weight = (land / land.sum() if land.sum() else 0) + (labour / labour.sum() if labour.sum() else 0)
    weight = weight / weight.sum() if np.sum(weight) else np.full(len(members), 1 / len(members))
    units = _whole(total, weight)
    return {"cooperative_id": cooperative_id, "product_id": product_id, "months": months,
            "method": f["method"], "loss_rate": loss_rate, "demand": f["forecast"],
            "plan_units": int(sum(units)), "plan_low80": int(round(low)), "plan_high80": int(round(high)),
            "members": [{"household_id": m.household_id, "household_number": m.number,
                         "share": round(float(w), 4), "units": int(u),
                         "low80": int(round(low * w)), "high80": int(round(high * w))}
                        for m, w, u in zip(members, weight, units)]}


def _whole(total: float, weight: np.ndarray) -> list[int]:
    """Whole units by the largest remainder, adding up to the rounded total."""
    target = int(round(total))
    exact = weight * target
    base = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - base), kind="stable")[: target - int(base.sum())]:
        base[i] += 1
    return base.tolist()


