"""The demo's programs and casework: running chickens with buy-back and settlement,
agricultural loans repaid from the proceeds, a cooperative under a Gansu charter paying
wages and dividends, training, shops and jobs, targeting cases at different steps, a
grievance, and the year's attributed income written into the register.

All business dates fall in the demo year (the register's year), so the ledger's income
of that year is what measurement sees.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from .db import session_factory, session_scope
from .demo_market import World, pick
from .registry.models import Member, Relation


def build_farming(w: World) -> None:
    """Running chickens for about a hundred households, with loans tied to the program."""
    from .programs import microloans
    from .programs.farming import (
        RUNNING_CHICKENS,
        buy_back,
        create_program,
        enrol,
        record_market_price,
        report_loss,
        settle,
    )
    from .programs.loans import add_months
    from .programs.models import LoanStatus

    y = w.year
    start = date(y, 4, 1)
    n = min(100, max(1, len(w.households) // 4))
    enrolled = pick(w, n)
    rng = w.rng
    with session_scope(w.url) as s:
        p = create_program(s, w.coop, **{**RUNNING_CHICKENS, "name": f"跑步鸡 {y}（成县）",
                                         "product": "散养跑步鸡", "unit": "只"},
                           start_date=start, cooperative_id=w.ids["coop_org"],
                           enterprise_id=w.ids["platform_org"])
        pid = p.id
        record_market_price(s, w.coop, pid, start, 3_000)
        end = start + timedelta(days=p.cycle_days)
        for hid in enrolled:
            birds = rng.randint(80, 130)
            enrol(s, w.coop, pid, hid, birds, start)
            dead = rng.randint(0, 4) if rng.random() > 0.03 else birds * 2 // 3  # a flock struck
            if dead:
                report_loss(s, w.coop, pid, hid, dead)
            alive = birds - dead
            grade_b = alive // 5 if rng.random() < 0.4 else 0
            buy_back(s, w.coop, pid, hid, f"chk{y}-{hid}-a", end, alive - grade_b, "A")
            if grade_b:
                buy_back(s, w.coop, pid, hid, f"chk{y}-{hid}-b", end, grade_b, "B")
        # The agricultural loan (interest only, principal at the end of the year): some
        # flock keepers borrowed last autumn for their coops and repay the last instalment
        # from the buy-back at the settlement; others borrowed for walnut orchards and pay
        # by hand.
        product = microloans.create_product(s, w.officer, **microloans.AGRICULTURAL_LOAN)
        settle_on = end + timedelta(days=2)
        tied = enrolled[:8]
        loans = []
        for hid in tied:
            loan = microloans.grant(s, w.officer, product.id, hid, 200_000, date(y - 1, 9, 5),
                                    "鸡舍改造 (a coop for the chickens)",
                                    repay_from_program_id=pid)
            microloans.disburse(s, w.officer, loan.id, settle_on.replace(year=y - 1))
            loans.append(loan.id)
        orchard = pick(w, 8, prefer_village=False, exclude=set(enrolled))
        for hid in orchard:
            loan = microloans.grant(s, w.officer, product.id, hid,
                                    rng.choice([1_000_000, 2_000_000, 3_000_000]),
                                    date(y, 2, 20), "核桃园管护与花椒苗 (orchard upkeep)")
            microloans.disburse(s, w.officer, loan.id, date(y, 3, 1))
            loans.append(loan.id)
        for loan_id in loans[:13]:
            loan = s.get(microloans.Loan, loan_id)
            # The tied loans' last instalment falls due on the settlement day.
            until = settle_on if loan.repay_from_program_id else date(y, 12, 31)
            day = loan.first_due
            while day < until:
                due = microloans.due_on(s, loan, day)
                if due:
                    microloans.repay(s, w.officer, loan_id, f"hand-{loan_id}-{day}", day, due)
                day = add_months(day, 1)
        w.ids.update(program=pid, loan_product=product.id)
    lines = settle(session_factory(w.url), w.coop, pid, settle_on)
    repaid = sum(x.loan_repaid_fen for x in lines)
    with session_scope(w.url) as s:
        closed = s.scalar(select(func.count()).select_from(microloans.Loan)
                          .where(microloans.Loan.status == LoanStatus.CLOSED))
    w.note(f"running chickens {y}: {len(lines)} households enrolled, settled on "
           f"{settle_on} ({sum(x.paid_fen for x in lines) / 100:,.0f} yuan paid out, "
           f"{repaid / 100:,.0f} yuan of loans repaid from the proceeds); "
           f"{len(loans)} agricultural loans, {closed} repaid in full")


def build_cooperative(w: World) -> None:
    from .cooperatives import service as coops

    y, cid = w.year, w.ids["coop_org"]
    rng = w.rng
    members = pick(w, 30)
    with session_scope(w.url) as s:
        coops.set_charter(s, w.coop, cid, y, "gansu-3.3", collective_region_code=w.village)
        for hid in members:
            coops.join(s, w.coop, cid, hid, date(y, 1, 8),
                       land_mu=rng.choice(["1.5", "2", "3.5", "5"]), labourers=rng.randint(1, 2))
        for period in (f"{y}-09", f"{y}-10"):
            for hid in members:
                if rng.random() < 0.7:
                    coops.record_labour(s, w.coop, cid, hid, f"{period}-{hid}", period,
                                        rng.randint(6, 22))
        coops.pay_wages(s, w.coop, cid, f"{y}-09", date(y, 10, 5))
        coops.pay_wages(s, w.coop, cid, f"{y}-10", date(y, 11, 5))
        coops.distribute(s, w.coop, cid, y, 12_000_000, date(y, 12, 28))
    w.note(f"cooperative 成县核桃产业农民专业合作社: charter gansu-3.3, {len(members)} member "
           f"households, wages for {y}-09 and {y}-10, 120,000 yuan surplus distributed "
           "(10 % to the village collective)")


def _working_age(session, household_ids: list[int], year: int) -> list[Member]:
    rows = session.scalars(select(Member).where(Member.household_id.in_(household_ids),
                                                Member.relation.in_([Relation.HEAD, Relation.SPOUSE,
                                                                     Relation.CHILD]))
                           .order_by(Member.household_id, Member.id)).all()
    out, seen = [], set()
    for m in rows:
        if 18 <= year - m.birth_date.year <= 50 and m.household_id not in seen:
            out.append(m)
            seen.add(m.household_id)
    return out


def build_livelihoods(w: World) -> None:
    from .livelihoods import service as lh

    y = w.year
    with session_scope(w.url) as s:
        people = _working_age(s, pick(w, 60), y)[:30]
        training = lh.create_training(
            s, w.officer, title="电商运营与直播带货培训班", topic="live_streaming",
            organiser="成县电子商务公共服务中心", region_code=w.county, start_date=date(y, 3, 11),
            end_date=date(y, 3, 15), hours=40, external_attendees=12)
        for i, m in enumerate(people):
            done = i % 6 != 5
            lh.record_attendance(s, w.officer, training.id, m.id, completed=done,
                                 certificate_no=f"CXDS{y}{i + 1:03d}" if done else None,
                                 subsidy_fen=20_000 if done else 0,
                                 paid_on=date(y, 3, 20) if done else None)
        shops = []
        for m, (name, kind, platform) in zip(people[:4], [
                ("山里核桃铺", "online_shop", "淘宝"), ("成县花椒直播间", "live_stream", "抖音"),
                ("岭上土货小店", "online_shop", "拼多多"), ("农家蜂蜜直播", "live_stream", "快手")]):
            shop = lh.open_shop(s, w.officer, m.id, name=name, kind=kind, opened_on=date(y, 4, 1),
                                platform=platform, training_id=training.id)
            shops.append(shop.id)
            for month in range(4, 13):
                lh.record_shop_earnings(s, w.officer, shop.id, f"{y}-{month:02d}",
                                        w.rng.randint(60_000, 260_000))
        jobs = []
        for m in people[4:10]:
            job = lh.add_job(s, w.enterprise, m.id, kind="full_time", wage_basis="monthly",
                             wage_fen=280_000, start_date=date(y, 5, 6),
                             employer_id=w.ids["platform_org"], title="电商客服")
            jobs.append(job.id)
            for month in range(5, 13):
                lh.pay_wage(s, w.enterprise, job.id, f"{y}-{month:02d}")
        for m in people[10:13]:
            job = lh.add_job(s, w.officer, m.id, kind="public_welfare", wage_basis="monthly",
                             wage_fen=80_000, start_date=date(y, 1, 1), employer_name="成县林业和草原局",
                             title="生态护林员")
            jobs.append(job.id)
            for month in range(1, 13):
                lh.pay_wage(s, w.officer, job.id, f"{y}-{month:02d}")
    w.note(f"livelihoods: a live-streaming training with {len(people)} attendees, "
           f"{len(shops)} shops with monthly earnings, {len(jobs)} jobs paid monthly")


def build_cases(w: World) -> list[str]:
    """Cases of the first village at different steps; one on public notice."""
    from .cases import service as cases
    from .registry.models import Household, Status
    from .registry.service import current_status

    made = []
    with session_scope(w.url) as s:
        status = {h: current_status(s, h)[0] for h in w.village_households}
        risk = dict(s.execute(select(Household.id, Household.risk_eliminated)
                              .where(Household.id.in_(w.village_households))).all())
        used: set[int] = set()

        def first(*wanted: Status) -> int | None:
            for h in w.village_households:
                if h not in used and status[h] in wanted:
                    used.add(h)
                    return h
            return None

        # On notice: a household reported a serious illness (the keeper heard of it first).
        hid = first(Status.EXITED, Status.RETURNED)
        if hid is not None:
            c = cases.open_case(s, w.keeper, "monitoring_entry", hid,
                                "户主突发重病，医疗支出大 (serious illness of the head)",
                                {"category": "sudden_hardship"})
            cases.take_step(s, w.cadre, c.id, "入户核实属实 (visited: confirmed)")
            made.append(f"case {c.id} entering monitoring, on public notice")
        else:
            hid = next((h for h in w.village_households if h not in used
                        and status[h] is Status.MONITORED and not risk[h]), None)
            if hid is not None:
                used.add(hid)
                c = cases.open_case(s, w.officer, "monitoring_exit", hid,
                                    "收入稳定超过监测线 (income stable above the line)")
                cases.take_step(s, w.cadre, c.id, "核实 (checked)")
                made.append(f"case {c.id} leaving monitoring, on public notice")
        # Waiting for the villagers' representatives: an application.
        hid = first(Status.EXITED, None)
        if hid is not None:
            c = cases.open_case(s, w.keeper, "identification", hid,
                                "因灾返贫申请 (applies: flood damage to the house)")
            made.append(f"case {c.id} identification, at the village appraisal")
        # An exit appraised in the village, waiting for the township's verification.
        hid = first(Status.IDENTIFIED, Status.RETURNED)
        if hid is not None:
            c = cases.open_case(s, w.officer, "exit", hid,
                                "两不愁三保障达标，收入超过标准 (all guarantees met)")
            cases.take_step(s, w.cadre, c.id, "民主评议通过 (appraised)")
            made.append(f"case {c.id} exit, at the township's verification")
        # A change of address requested by the keeper.
        hid = next((h for h in w.village_households if h not in used), None)
        if hid is not None:
            c = cases.open_case(s, w.keeper, "data_change", hid,
                                "易地扶贫搬迁后住址变更 (moved to the relocation site)",
                                {"fields": {"address": "县城易地扶贫搬迁安置点 3 号楼"}})
            made.append(f"case {c.id} change of address, at the village check")
    w.ids["cases"] = made
    return made


def build_voices(w: World) -> None:
    """A grievance or two and questions to the county's experts from the first village."""
    notes = []
    try:
        from .grievances import service as grievances
    except ImportError:  # pragma: no cover - built alongside the demo
        grievances = None
    if grievances is not None:
        with session_scope(w.url) as s:
            grievances.file_grievance(
                s, None, category="money_not_received",
                text="跑步鸡回收款还没有到账，合作社说已经结算了。The buy-back money for my "
                     "chickens has not arrived although the cooperative says it settled.",
                region_code=w.village, contact_name="王女士", contact_phone="13993912345")
            if w.village_households:
                grievances.file_grievance(
                    s, w.keeper, category="wrong_data",
                    text="家里人口登记错了：儿子已经分户。The household's members are wrong: "
                         "the son has set up his own household.",
                    household_id=w.village_households[0], contact_name="村民（代填）")
        notes.append("2 grievances (one filed by the keeper for a villager)")
    try:
        from .advice import service as advice
    except ImportError:  # pragma: no cover - built alongside the demo
        advice = None
    if advice is not None:
        with session_scope(w.url) as s:
            q = advice.ask(s, w.village, category="farming",
                           text="核桃树叶子发黑、果子掉得多，是不是得了黑斑病？该怎么防治？ The walnut "
                                "leaves turn black and the nuts drop early: is it bacterial "
                                "black spot, and what should I spray?",
                           contact_name="李师傅")
            advice.answer(s, w.officer, q.id,
                          "像是核桃黑斑病。采收后清园、剪除病枝；展叶期和落花后各喷一次 1:0.5:200 "
                          "波尔多液，雨后加喷。县农技中心可上门查看。Most likely walnut black "
                          "spot: clear fallen leaves and prune diseased shoots after harvest; spray "
                          "Bordeaux mixture at leaf-out and after flowering, again after rain. "
                          "The county extension centre can visit.")
            advice.ask(s, w.village, category="legal",
                       text="在外打工的工钱被拖欠了半年，怎么要回来？ My wages from a city job have "
                            "been unpaid for six months: how do I get them?",
                       contact_name="赵大哥")
        notes.append("2 questions to the experts (one answered)")
    if notes:
        w.note("from the first village: " + "; ".join(notes))


def write_income(w: World) -> dict:
    from .ledger.service import write_attributed_income
    with session_scope(w.url) as s:
        counts = write_attributed_income(s, w.officer, w.year)
    w.note(f"ledger → register: {w.year} attributed income written ({counts['created']} income "
           f"records created, {counts['raised']} raised)")
    return counts


def build_programs(w: World) -> None:
    build_farming(w)
    build_cooperative(w)
    build_livelihoods(w)
