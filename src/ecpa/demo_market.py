"""The demo's marketplace side: organisations, sellers certified as poverty-linked, the
county pavilion with 成县's products, traceable batches, the service network with a
village station and its keeper, delivery zones, orders paid through the test gateway,
a consumption poverty alleviation campaign and a crowdfunding pre-sale.

Everything goes through the use-case functions the API and the web pages call, with the
actor who would do it in life, so that building the demo exercises the real paths.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select

from .db import session_factory, session_scope, utcnow
from .people.access import Actor
from .people.models import Role
from .registry.models import Household, Member, OrganisationKind, Relation

DEMO_GS1_PREFIX = "6975212"  # a GS1 China company prefix for the demo's cooperative
CITIES = {"620102": "兰州市城关区", "110105": "北京市朝阳区", "310115": "上海市浦东新区"}


@dataclass
class World:
    """What the demo has built so far, shared by its steps."""

    url: str
    year: int
    county: str
    township: str
    village: str
    admin: Actor
    officer: Actor
    cadre: Actor
    keeper: Actor
    coop: Actor
    enterprise: Actor
    consumer: Actor
    households: list[int]  # all, by id
    village_households: list[int]
    rng: random.Random
    ids: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)


def actors(county: str, village: str) -> dict[str, Actor]:
    """The demo's users as actors (their rights are checked by each use case)."""
    from .people.access import system_actor
    return {"admin": system_actor("demo"),
            "officer": Actor("officer", Role.COUNTY_OFFICER, county),
            "cadre": Actor("cadre", Role.VILLAGE_CADRE, village),
            "keeper": Actor("keeper", Role.STATION_KEEPER, village),
            "coop": Actor("coop", Role.COOPERATIVE_MANAGER, county),
            "enterprise": Actor("enterprise", Role.ENTERPRISE),
            "consumer": Actor("consumer", Role.CONSUMER)}


def credit_code(body: str) -> str:
    """A unified social credit code: 17 characters and their check character."""
    from stdnum.cn import uscc
    return body + uscc.calc_check_digit(body)


def gs1(body: str) -> str:
    from .trace import epcis
    return body + epcis.gs1_check_digit(body)


def heads(session, household_ids: list[int]) -> dict[int, Member]:
    rows = session.scalars(select(Member).where(Member.household_id.in_(household_ids),
                                                Member.relation == Relation.HEAD))
    return {m.household_id: m for m in rows}


def _surname(heads_by_household: dict[int, Member], household_id: int) -> str:
    head = heads_by_household.get(household_id)
    return head.name[0] if head is not None and head.name else "农"


def pick(w: World, n: int, *, prefer_village: bool = True,
         exclude: set[int] = frozenset()) -> list[int]:
    """``n`` households: the first village's first, then others of the county at random."""
    chosen = [h for h in w.village_households if h not in exclude][:n] if prefer_village else []
    rest = [h for h in w.households if h not in exclude and h not in chosen]
    chosen += w.rng.sample(rest, min(n - len(chosen), len(rest)))
    return chosen


# --- organisations, sellers, products --------------------------------------------------

PRODUCTS = [
    # seller key, name, category, description, SKUs (code, title, unit, grams, price fen, stock)
    ("coop", "成县核桃", "agricultural",
     ("成县是“中国核桃之乡”：秋分前后采收的薄皮核桃，壳薄仁满，自然晾晒。Thin-shelled walnuts "
     "from the 'home of Chinese walnuts', picked around the autumn equinox and sun-dried."),
     [("CX-WAL-2500", "薄皮核桃 2.5 kg 袋装", "bag", 2600, 6800, 600),
      ("CX-WAL-1000", "薄皮核桃 1 kg 礼盒", "box", 1200, 3600, 800)]),
    ("coop", "大红袍花椒", "agricultural",
     ("陇南山地的大红袍花椒，麻香浓郁，颗粒饱满。Chinese prickly ash (Sichuan pepper) of the "
     "Longnan hills: strongly numbing and fragrant."),
     [("CX-HJ-250", "花椒 250 g 罐装", "jar", 300, 4500, 400)]),
    ("coop", "秦岭黑木耳", "agricultural",
     "椴木栽培的黑木耳，肉厚无沙，泡发率高。Black wood-ear fungus grown on logs.",
     [("CX-MUER-500", "黑木耳 500 g", "bag", 550, 5800, 300)]),
    ("coop", "成县紫皮大蒜", "agricultural",
     "紫皮独头大蒜，辛辣味足，耐储存。Purple-skinned garlic, pungent and keeping well.",
     [("CX-GARLIC-5000", "紫皮大蒜 5 kg 箱装", "box", 5200, 3900, 300),
      ("CX-GARLIC-NEW", "新蒜预售 5 kg（明年 6 月发货）", "box", 5200, 4200, 600)]),
    ("honey", "土蜂蜜", "food",
     ("山里土蜂酿的百花蜜，一年只取一次。Wild-flower honey of the village's own hives, taken "
     "once a year."),
     [("CX-HONEY-500", "土蜂蜜 500 g 玻璃瓶", "jar", 750, 6800, 80)]),
    ("stay", "农家乐住宿 · 含三餐", "tourism",
     ("住在村里的农家小院：土鸡、核桃宴、山野菜，可预约采摘核桃与花椒。A farm stay in the "
     "village: a night in a farmhouse with three meals; walnut and prickly-ash picking in season."),
     [("CX-STAY-1N", "一晚两人 含三餐", "night", 0, 26800, 30)]),
    ("farm", "复合肥 15-15-15", "means_of_production",
     ("硫酸钾型复合肥（氮磷钾各 15%），核桃、花椒追肥适用；村服务站可代购、到站自提。"
     "Compound fertiliser N-P-K 15-15-15 for walnuts and prickly ash; bought through the "
     "village station, collected there."),
     [("CX-FERT-40KG", "复合肥 40 kg 袋", "bag", 40000, 16000, 200)]),
]


def build_sellers(w: World) -> None:
    from .market import catalog
    from .registry.service import register_organisation

    with session_scope(w.url) as s:
        coop_org = register_organisation(s, w.coop, OrganisationKind.COOPERATIVE,
                                         "成县核桃产业农民专业合作社",
                                         credit_code("93621221MA71H2C50"), w.county)
        platform = register_organisation(s, w.enterprise, OrganisationKind.ENTERPRISE,
                                         "陇南成县电子商务扶贫运营有限公司",
                                         credit_code("91621221MA72BX4K8"), w.county)
        farm_org = register_organisation(s, w.enterprise, OrganisationKind.ENTERPRISE,
                                         "成县惠农农资有限公司",
                                         credit_code("91621221MA73CK9P1"), w.county)
        w.ids.update(coop_org=coop_org.id, platform_org=platform.id, farm_org=farm_org.id)

        # Two households of the first village sell for themselves: honey and a farm stay.
        family = pick(w, 2)
        names = heads(s, family)
        honey_hh, stay_hh = family
        home = dict(s.execute(select(Household.id, Household.village_code)
                              .where(Household.id.in_(family))).all())
        sellers = {
            "coop": catalog.create_seller(s, w.officer, kind="cooperative",
                                          name="成县核桃产业农民专业合作社", region_code=w.county,
                                          organisation_id=coop_org.id, manager_username="coop"),
            "honey": catalog.create_seller(s, w.officer, kind="household",
                                           name=f"{_surname(names, honey_hh)}家土蜂场",
                                           region_code=home[honey_hh], household_id=honey_hh,
                                           manager_username="cadre"),
            "stay": catalog.create_seller(s, w.officer, kind="household",
                                          name=f"{_surname(names, stay_hh)}家农家乐",
                                          region_code=home[stay_hh], household_id=stay_hh,
                                          manager_username="cadre"),
            "farm": catalog.create_seller(s, w.enterprise, kind="enterprise",
                                          name="成县惠农农资", region_code=w.county,
                                          organisation_id=farm_org.id,
                                          manager_username="enterprise"),
        }
        # The cooperative buys from and employs poor households: certified poverty-linked.
        suppliers = pick(w, 12, exclude=set(family))
        for i, hid in enumerate(suppliers):
            catalog.link_household(s, w.coop, sellers["coop"].id, hid,
                                   "member" if i % 3 else "supplier")
        for key in ("coop", "honey", "stay"):
            catalog.certify(s, w.officer, sellers[key].id,
                            "linked to registered poor households (见建档立卡名单)")
        products, skus = {}, {}
        for key, name, category, description, sku_rows in PRODUCTS:
            actor = {"coop": w.coop, "farm": w.enterprise}.get(key, w.cadre)
            origin = {"honey": home[honey_hh], "stay": home[stay_hh], "farm": w.county}
            p = catalog.add_product(s, actor, sellers[key].id, name=name, category=category,
                                    origin_code=origin.get(key, w.village),
                                    description=description)
            products[name] = p.id
            for code, title, unit, grams, price, stock in sku_rows:
                skus[code] = catalog.add_sku(s, actor, p.id, code=code, title=title, unit=unit,
                                             weight_g=grams, price_fen=price, stock=stock).id
        featured = [products[n] for n in ("成县核桃", "大红袍花椒", "土蜂蜜", "秦岭黑木耳",
                                          "农家乐住宿 · 含三餐")]
        catalog.set_pavilion(
            s, w.officer, w.county, "成县特色馆 · 中国核桃之乡",
            "成县地处陇南山区，核桃栽培已有两千多年。合作社带动建档立卡贫困户种核桃、花椒、养蜂，"
            "每一批货都能扫码查到产地、采收日期和带动的农户。 Cheng county in the Longnan hills has "
            "grown walnuts for two thousand years; its cooperative brings registered poor "
            "households into walnuts, prickly ash and bee-keeping, and every batch can be "
            "traced to its village and harvest.", featured)
        w.ids.update(sellers={k: v.id for k, v in sellers.items()}, products=products, skus=skus,
                     honey_household=honey_hh, stay_household=stay_hh, suppliers=suppliers,
                     honey_village=home[honey_hh])
    w.note(f"marketplace: {len(sellers)} sellers (3 certified poverty-linked), "
           f"{len(products)} products, {len(skus)} SKUs; pavilion 成县特色馆")


# --- traceability -------------------------------------------------------------------------

def build_batches(w: World) -> None:
    from .trace import service as trace

    yard = gs1(f"{DEMO_GS1_PREFIX}00001")       # GLN: the cooperative's drying yard
    warehouse = gs1(f"{DEMO_GS1_PREFIX}00002")  # GLN: the county e-commerce warehouse
    y = w.year
    with session_scope(w.url) as s:
        walnut = trace.create_batch(
            s, w.coop, product_id=w.ids["products"]["成县核桃"], gtin=gs1(f"{DEMO_GS1_PREFIX}10001"),
            lot=f"WAL{y}-09A", origin_code=w.village, produced_on=date(y, 9, 14),
            quantity="3000", uom="KGM", sku_id=w.ids["skus"]["CX-WAL-2500"],
            household_ids=w.ids["suppliers"][:8], cooperative_id=w.ids["coop_org"])
        ash = trace.create_batch(
            s, w.coop, product_id=w.ids["products"]["大红袍花椒"], gtin=gs1(f"{DEMO_GS1_PREFIX}10002"),
            lot=f"HJ{y}-07", origin_code=w.village, produced_on=date(y, 7, 28), quantity="420",
            uom="KGM", sku_id=w.ids["skus"]["CX-HJ-250"], household_ids=w.ids["suppliers"][8:],
            cooperative_id=w.ids["coop_org"])
        honey = trace.create_batch(
            s, w.officer, product_id=w.ids["products"]["土蜂蜜"], gtin=gs1(f"{DEMO_GS1_PREFIX}10003"),
            lot=f"HONEY{y}-1", origin_code=w.village, produced_on=date(y, 8, 20), quantity="60",
            uom="KGM", sku_id=w.ids["skus"]["CX-HONEY-500"],
            household_ids=[w.ids["honey_household"]])
        trace.add_certificate(s, w.coop, batch_id=walnut.id, kind="geographical_indication",
                              number="AGI2013-0146", issuer="农业农村部（农产品地理标志）",
                              valid_from=date(2013, 12, 1), valid_to=date(2033, 11, 30))
        trace.add_certificate(s, w.coop, batch_id=walnut.id, kind="gap",
                              number=f"GAP-{y}-62122107", issuer="中国质量认证中心",
                              valid_from=date(y, 3, 1), valid_to=date(y + 3, 2, 28))
        trace.add_certificate(s, w.officer, seller_id=w.ids["sellers"]["coop"], kind="qs_sc",
                              number="SC11862122100317", issuer="成县市场监督管理局",
                              valid_from=date(2023, 5, 10), valid_to=date(2028, 5, 9))
        t0 = datetime(y, 9, 14, 9, 30)
        steps = [("commissioning", t0, {"read_point": yard}),
                 ("packing", t0 + timedelta(days=6),
                  {"container_sscc": gs1(f"0{DEMO_GS1_PREFIX}000000001"), "quantity": 1500}),
                 ("shipping", t0 + timedelta(days=21), {"read_point": yard}),
                 ("receiving", t0 + timedelta(days=22), {"biz_location": warehouse})]
        for step, when, extra in steps:
            trace.capture_simple(s, w.coop, walnut.id, step=step, event_time=when, **extra)
        trace.capture_simple(s, w.coop, ash.id, step="commissioning",
                             event_time=datetime(y, 7, 28, 16, 0), read_point=yard)
        trace.capture_simple(s, w.officer, honey.id, step="commissioning",
                             event_time=datetime(y, 8, 20, 10, 0))
        w.ids["batch"] = (walnut.gtin, walnut.lot)
        w.ids["batches"] = [(b.gtin, b.lot) for b in (walnut, ash, honey)]
    w.note(f"traceability: 3 batches with EPCIS events; the walnuts' public page is "
           f"/trace/01/{w.ids['batch'][0]}/10/{w.ids['batch'][1]}")


# --- the service network --------------------------------------------------------------------

def build_stations(w: World) -> None:
    from .stations import service as stations

    with session_scope(w.url) as s:
        for zone, fee, days, door in (("county_town", 600, 1, True), ("township", 800, 2, True),
                                      ("village", 1000, 3, False)):
            stations.set_zone(s, w.officer, w.county, zone, fee_fen=fee, days=days,
                              per_kg_fen=100, door_delivery=door)
        # Parcels to buyers in the cities (the platform sets these for all counties).
        for code in CITIES:
            stations.set_zone(s, w.admin, code, "county_town", fee_fen=1200, days=3,
                              base_weight_g=3000, per_kg_fen=200)
        centre = stations.create_station(s, w.officer, w.county, "成县电子商务公共服务中心",
                                         phone="0939-3212345")
        town = stations.create_station(s, w.officer, w.township, "城关镇电商服务站",
                                       phone="0939-3212346")
        village = stations.create_station(s, w.officer, w.village, "村级电商服务站",
                                          keeper_username="keeper", phone="13993900001")
        w.ids.update(station=village.id, stations=[centre.id, town.id, village.id])
    w.note("service network: county centre, township and village stations (keeper: keeper); "
           "delivery zones for the county and three cities")


# --- orders, campaigns, pre-sale ------------------------------------------------------------

def _pay(f, actor: Actor, order_id: int) -> None:
    from .market import payments
    start = payments.start_payment(f, actor, order_id)
    body, sig = payments.gateway_named("test").callback(start.reference, start.amount_fen)
    payments.handle_callback(f, "test", body, sig)


def _advance(w: World, f, buyer: Actor, order_id: int, stage: str) -> None:
    """Move a paid order on to ``stage``: paid, shipped, delivered or completed."""
    from .market import orders
    if stage == "paid":
        return
    orders.ship(f, w.officer, order_id, "中国邮政 EMS", f"EMS{9700000000 + order_id}CN")
    if stage == "shipped":
        return
    orders.mark_delivered(f, buyer, order_id)
    if stage == "completed":
        orders.complete(f, buyer, order_id)


def build_orders(w: World) -> None:
    from .campaigns import service as campaigns
    from .market import orders, payments
    from .stations import service as stations

    f = session_factory(w.url)
    payments.reset_gateways()
    now = utcnow()
    with session_scope(w.url) as s:
        # The 17 October poverty alleviation day of the demo year, and this month's drive.
        campaigns.create_campaign(
            s, w.officer, name=f"{w.year} 全国扶贫日 · 成县消费扶贫专场",
            starts_at=datetime(w.year, 10, 16, 16), ends_at=datetime(w.year, 10, 19, 16),
            counties=[w.county], poverty_linked_only=True, percent_off_bp=1500)
        drive = campaigns.create_campaign(
            s, w.officer, name="成县消费帮扶月 · 买核桃助农增收", starts_at=now - timedelta(days=3),
            ends_at=now + timedelta(days=27), counties=[w.county], poverty_linked_only=True,
            percent_off_bp=1000, threshold_fen=10_000, threshold_off_fen=1_000,
            per_buyer_limit=20)
        w.ids["campaign"] = drive.id
    skus = w.ids["skus"]
    buyers = [w.consumer] + [Actor(f"buyer{n:02d}", Role.CONSUMER) for n in range(1, 16)]
    baskets = [["CX-WAL-2500", "CX-HONEY-500"], ["CX-HJ-250", "CX-MUER-500"], ["CX-WAL-1000"],
               ["CX-GARLIC-5000"], ["CX-WAL-2500"], ["CX-HJ-250", "CX-WAL-1000"],
               ["CX-MUER-500"], ["CX-HONEY-500"]]
    stages = ["completed"] * 18 + ["paid", "paid", "shipped", "shipped", "delivered", "pending"]
    made = {"completed": 0}
    for i, stage in enumerate(stages):
        buyer = buyers[i % len(buyers)]
        items = [orders.Item(skus[c], w.rng.randint(1, 3)) for c in baskets[i % len(baskets)]]
        order = orders.checkout(f, buyer, f"demo-{i}", items, ship_to_code=list(CITIES)[i % 3],
                                address="（演示地址）", contact_name=buyer.username,
                                discount=campaigns.discount_hook)
        made[stage] = made.get(stage, 0) + 1
        if stage == "pending":
            continue  # awaiting payment: its stock is reserved for 15 minutes
        _pay(f, buyer, order["id"])
        _advance(w, f, buyer, order["id"], stage)
    # The keeper buys fertiliser for villagers (assisted purchase, 10 % commission).
    villagers = w.village_households[:3]
    for i, hid in enumerate(villagers):
        order = stations.assisted_checkout(f, w.keeper, w.ids["station"], hid, f"assist-{i}",
                                           [orders.Item(skus["CX-FERT-40KG"], 1 + i % 2)])
        _pay(f, w.keeper, order["id"])
        _advance(w, f, w.keeper, order["id"], "completed" if i < 2 else "shipped")
    # A crowdfunding pre-sale of next summer's garlic, with pledges.
    with session_scope(w.url) as s:
        presale = campaigns.create_presale(
            s, w.coop, sku_id=skus["CX-GARLIC-NEW"], target_units=300,
            deadline=now + timedelta(days=25), delivery_date=date(now.year + 1, 6, 20),
            title="众筹：明年夏天的成县紫皮大蒜 · 300 箱成团")
        w.ids["presale"] = presale.id
    pledged = 0
    for i, buyer in enumerate(buyers[:10]):
        qty = w.rng.choice([2, 5, 10, 20])
        order = campaigns.pledge(f, buyer, w.ids["presale"], f"p{i}", qty,
                                 ship_to_code=list(CITIES)[i % 3], contact_name=buyer.username)
        if i < 8:
            _pay(f, buyer, order["id"])
            pledged += qty
    w.note(f"orders: {sum(made.values())} from consumers in three cities ({made['completed']} "
           f"completed, the rest paid, shipped, delivered or awaiting payment), "
           f"{len(villagers)} assisted purchases at the village station; campaigns: 2 "
           f"consumption days; pre-sale {w.ids['presale']} with {pledged} of 300 units paid")


def build_consignment(w: World) -> None:
    """The keeper takes a household's prickly ash in, sells it, hands the money over."""
    from .stations import service as stations

    if not w.village_households:
        return
    hid = w.village_households[min(2, len(w.village_households) - 1)]
    y = w.year
    with session_scope(w.url) as s:
        c = stations.receive(s, w.keeper, w.ids["station"], hid, key=f"ash-{y}",
                             product="花椒（散装）", quantity=20, unit="斤", price_fen=6_000,
                             received_on=date(y, 8, 18))
        stations.sell(s, w.keeper, w.ids["station"], c.id, key="sale-1", quantity=12,
                      sold_on=date(y, 8, 25))
        stations.sell(s, w.keeper, w.ids["station"], c.id, key="sale-2", quantity=5,
                      sold_on=date(y, 9, 2), unit_price_fen=6_500)
        stations.pay_household(s, w.keeper, w.ids["station"], hid, key=f"{y}-09",
                               day=date(y, 9, 5))


def build_village_page(w: World) -> None:
    """What the first village's public page tells about it (there is no use case for a
    village's profile yet: it is the region's profile, as the county's is)."""
    from .regions.models import Region

    with session_scope(w.url) as s:
        village = s.get(Region, w.village)
        township = s.get(Region, village.parent_code) if village.parent_code else None
        where = f"成县{township.name}" if township else "成县"
        village.profile = {
            "story": (f"{village.name}在{where}的山坳里，家家有核桃树。合作社带着村里的建档立卡户"
                      "种核桃、花椒、养土蜂、办农家乐，村里的电商服务站帮大家网上买卖。 A hill "
                      "village of Cheng county where every family has walnut trees; the "
                      "cooperative brings its registered poor households into walnuts, prickly "
                      "ash, bees and farm stays, and the village station buys and sells online "
                      "for them."),
            "scenery": [{"title": "千年核桃林 · Thousand-year walnut grove",
                         "text": "村后山坡上的老核桃树，秋分前后打核桃，游客可以参加。 Old walnut "
                                 "trees on the slope; visitors join the harvest at the equinox."},
                        {"title": "花椒梯田 · Prickly-ash terraces",
                         "text": "七月花椒红了，满山椒香。 In July the terraces turn red with "
                                 "prickly ash."}],
            "news": [{"title": f"{w.year} 年核桃丰收 · Walnut harvest",
                      "text": "合作社收购核桃 3 吨，带动 8 户建档立卡户增收。 The cooperative "
                              "bought 3 t of walnuts from eight registered households."},
                     {"title": "电商服务站开业 · The village station opens",
                      "text": "村民可在服务站代购化肥、农资，寄卖花椒，到站自提包裹。 Villagers buy "
                              "fertiliser, sell prickly ash on consignment and collect parcels."}],
        }


def build_market(w: World) -> None:
    build_village_page(w)
    build_sellers(w)
    build_batches(w)
    build_stations(w)
    build_orders(w)
    build_consignment(w)


def household_ids(url: str, village: str) -> tuple[list[int], list[int]]:
    with session_scope(url) as s:
        rows = s.execute(select(Household.id, Household.village_code).order_by(Household.id)).all()
    return [h for h, _ in rows], [h for h, v in rows if v == village]


