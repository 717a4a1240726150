"""The ledger on SQLite and PostgreSQL: balanced, idempotent, append-only, periods."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from ecpa.db import get_engine, session_scope
from ecpa.errors import Conflict, InvalidInput
from ecpa.ledger.models import AccountKind, Channel, Posting, Transaction
from ecpa.ledger.service import (
    Leg, attributed_income, balance, close_period, open_account, post, reverse, statement)
from ecpa.people.access import system_actor

ACTOR = system_actor("test")
D = date(2024, 5, 10)


def accounts(s):
    open_account(s, "platform", "Platform", AccountKind.PLATFORM)
    open_account(s, "coop", "Walnut cooperative", AccountKind.COOPERATIVE)
    open_account(s, "hh:1", "Household 1", AccountKind.HOUSEHOLD)
    open_account(s, "hh:2", "Household 2", AccountKind.HOUSEHOLD)


def test_balanced_posting_balances_and_statement(db_url):
    with session_scope(db_url) as s:
        accounts(s)
        post(s, ACTOR, "t1", D, "buy-back", [Leg("coop", 12_345), Leg("hh:1", -12_345)])
        post(s, ACTOR, "t2", date(2024, 6, 1), "advance netted", [Leg("hh:1", 2_000), Leg("coop", -2_000)])
        assert balance(s, "coop") == 10_345 and balance(s, "hh:1") == -10_345
        assert balance(s, "coop", as_of=D) == 12_345
        st_ = statement(s, "hh:1", date(2024, 6, 1), date(2024, 6, 30))
        assert st_["opening_fen"] == -12_345 and st_["closing_fen"] == -10_345
        assert [l["balance_fen"] for l in st_["lines"]] == [-10_345]


def test_unbalanced_float_and_unknown_refused(db_url):
    with session_scope(db_url) as s:
        accounts(s)
        with pytest.raises(InvalidInput, match="sum to 1 fen"):
            post(s, ACTOR, "u1", D, "x", [Leg("coop", 101), Leg("hh:1", -100)])
        with pytest.raises(InvalidInput, match="integer fen"):
            post(s, ACTOR, "u2", D, "x", [Leg("coop", 1.5), Leg("hh:1", -1.5)])
        with pytest.raises(InvalidInput, match="unknown account"):
            post(s, ACTOR, "u3", D, "x", [Leg("coop", 1), Leg("nobody", -1)])
        assert s.scalar(select(func.count()).select_from(Transaction)) == 0


def test_same_key_records_once_and_conflicts_when_different(db_url):
    with session_scope(db_url) as s:
        accounts(s)
        a = post(s, ACTOR, "k", D, "x", [Leg("coop", 500), Leg("hh:1", -500)])
        b = post(s, ACTOR, "k", D, "x", [Leg("hh:1", -500), Leg("coop", 500)])
        assert a.id == b.id
        assert s.scalar(select(func.count()).select_from(Posting)) == 2
        with pytest.raises(Conflict, match="different transaction"):
            post(s, ACTOR, "k", D, "x", [Leg("coop", 501), Leg("hh:1", -501)])


def test_reversal_restores_and_is_recorded_once(db_url):
    with session_scope(db_url) as s:
        accounts(s)
        t = post(s, ACTOR, "orig", D, "x", [Leg("coop", 800), Leg("hh:1", -800)])
        r1 = reverse(s, ACTOR, t.id, "rev", D, "wrong grade")
        r2 = reverse(s, ACTOR, t.id, "rev", D, "wrong grade")
        assert r1.id == r2.id and balance(s, "coop") == 0
        with pytest.raises(Conflict, match="already reversed"):
            reverse(s, ACTOR, t.id, "rev-again", D, "x")


def test_closed_period_refused_in_python_and_by_the_database(db_url):
    with session_scope(db_url) as s:
        accounts(s)
        close_period(s, ACTOR, "2024-05")
        with pytest.raises(Conflict, match="closed"):
            post(s, ACTOR, "late", D, "x", [Leg("coop", 1), Leg("hh:1", -1)])
        post(s, ACTOR, "june", date(2024, 6, 3), "x", [Leg("coop", 1), Leg("hh:1", -1)])
    with pytest.raises(DBAPIError, match="closed"):
        with get_engine(db_url).begin() as c:
            c.execute(text("INSERT INTO ledger_transaction (key, business_date, period, description,"
                           " recorded_by, recorded_at) VALUES ('raw', '2024-05-02', '2024-05', 'x',"
                           " 'sql', '2024-05-02')"))


def test_ledger_is_append_only_in_the_database(db_url):
    with session_scope(db_url) as s:
        accounts(s)
        post(s, ACTOR, "t", D, "x", [Leg("coop", 10), Leg("hh:1", -10)])
    for sql in ("UPDATE ledger_posting SET amount_fen = 0",
                "DELETE FROM ledger_posting",
                "UPDATE ledger_transaction SET description = 'edited'"):
        with pytest.raises(DBAPIError, match="append-only"):
            with get_engine(db_url).begin() as c:
                c.execute(text(sql))


def test_postgres_refuses_an_unbalanced_transaction_at_commit(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no deferred constraints; the Python check guards it")
    with session_scope(db_url) as s:
        accounts(s)
    with pytest.raises(DBAPIError, match="does not balance"):
        with get_engine(db_url).begin() as c:
            tid = c.execute(text(
                "INSERT INTO ledger_transaction (key, business_date, period, description, recorded_by,"
                " recorded_at) VALUES ('bad', '2024-05-02', '2024-05', 'x', 'sql', now()) RETURNING id"
            )).scalar()
            c.execute(text("INSERT INTO ledger_posting (transaction_id, leg, account_id, amount_fen)"
                           " SELECT :t, 0, id, 100 FROM ledger_account WHERE code = 'coop'"), {"t": tid})
            c.execute(text("INSERT INTO ledger_posting (transaction_id, leg, account_id, amount_fen)"
                           " SELECT :t, 1, id, -99 FROM ledger_account WHERE code = 'hh:1'"), {"t": tid})
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(Transaction)) == 0


def test_attributed_income_by_household_and_channel(db_url, register_file):
    from ecpa.registry.importer import import_register
    from ecpa.registry.models import Household
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        h1, h2 = s.scalars(select(Household.id).order_by(Household.id)).all()[:2]
        accounts(s)
        post(s, ACTOR, "b1", D, "buy-back", [
            Leg("coop", 30_000), Leg("hh:1", -30_000, h1, Channel.INDUSTRY)])
        post(s, ACTOR, "w1", D, "wages", [
            Leg("coop", 9_000), Leg("hh:2", -9_000, h2, Channel.EMPLOYMENT)])
        t = post(s, ACTOR, "b2", D, "buy-back", [
            Leg("coop", 1_000), Leg("hh:1", -1_000, h1, Channel.INDUSTRY)])
        reverse(s, ACTOR, t.id, "b2-rev", D, "duplicate delivery")
        post(s, ACTOR, "old", date(2023, 12, 31), "last year", [
            Leg("coop", 5), Leg("hh:1", -5, h1, Channel.INDUSTRY)])
        assert attributed_income(s, 2024) == {h1: {"industry": 30_000}, h2: {"employment": 9_000}}


class LedgerMachine(RuleBasedStateMachine):
    """Random postings, reversals and replays: every transaction stays balanced and the
    whole ledger sums to zero."""

    url: str = ""

    def __init__(self):
        super().__init__()
        self.posted: list[int] = []
        self.n = 0

    @rule(amounts=st.lists(st.integers(min_value=-10**9, max_value=10**9).filter(bool),
                           min_size=1, max_size=4),
          replay=st.booleans())
    def post_random(self, amounts, replay):
        self.n += 1
        codes = ["platform", "coop", "hh:1", "hh:2"]
        rng = random.Random(self.n)
        legs = [Leg(rng.choice(codes), a) for a in amounts]
        if sum(amounts):
            legs.append(Leg(rng.choice(codes), -sum(amounts)))  # the balancing leg
        key = f"sm-{id(self)}-{self.n}"
        with session_scope(self.url) as s:
            try:
                t = post(s, ACTOR, key, D, "random", legs)
            except InvalidInput:
                return
            self.posted.append(t.id)
            if replay:
                assert post(s, ACTOR, key, D, "random", legs).id == t.id

    @rule(data=st.data())
    def reverse_one(self, data):
        if not self.posted:
            return
        tid = data.draw(st.sampled_from(self.posted))
        with session_scope(self.url) as s:
            try:
                reverse(s, ACTOR, tid, f"rev-{tid}", D, "random")
            except Conflict:
                pass

    @invariant()
    def balanced(self):
        with session_scope(self.url) as s:
            unbalanced = s.execute(select(Posting.transaction_id).group_by(Posting.transaction_id)
                                   .having(func.sum(Posting.amount_fen) != 0)).all()
            assert unbalanced == []
            assert (s.scalar(select(func.coalesce(func.sum(Posting.amount_fen), 0))) or 0) == 0


def test_random_operations_keep_every_transaction_balanced(db_url):
    with session_scope(db_url) as s:
        accounts(s)
    LedgerMachine.url = db_url
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=15, stateful_step_count=25, deadline=None))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_ledger_through_the_api(db_url):
    from fastapi.testclient import TestClient
    from ecpa.api.app import create_app
    from ecpa.people.models import Role
    from ecpa.people.service import create_user
    with session_scope(db_url) as s:
        create_user(s, ACTOR, "officer", "password-123", Role.COUNTY_OFFICER, "621221")
        create_user(s, ACTOR, "buyer", "password-123", Role.CONSUMER)
    client = TestClient(create_app())

    def auth(user):
        tok = client.post("/api/auth/token", data={"username": user, "password": "password-123"})
        return {"Authorization": f"Bearer {tok.json()['access_token']}"}

    officer = auth("officer")
    for code, kind in (("coop", "cooperative"), ("hh:1", "household")):
        r = client.post("/api/ledger/accounts", json={"code": code, "name": code, "kind": kind},
                        headers=officer)
        assert r.status_code == 201
    body = {"key": "api-1", "date": "2024-05-10", "description": "buy-back",
            "legs": [{"account": "coop", "amount_fen": 700}, {"account": "hh:1", "amount_fen": -700}]}
    first = client.post("/api/ledger/transactions", json=body, headers=officer)
    again = client.post("/api/ledger/transactions", json=body, headers=officer)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    bad = dict(body, key="api-2", legs=[{"account": "coop", "amount_fen": 700},
                                        {"account": "hh:1", "amount_fen": -600}])
    r = client.post("/api/ledger/transactions", json=bad, headers=officer)
    assert r.status_code == 422 and "sum to 100 fen" in r.json()["message"]
    fl = dict(body, key="api-3", legs=[{"account": "coop", "amount_fen": 7.5},
                                       {"account": "hh:1", "amount_fen": -7.5}])
    assert client.post("/api/ledger/transactions", json=fl, headers=officer).status_code == 422
    r = client.get("/api/ledger/accounts/hh:1/statement",
                   params={"start": "2024-01-01", "end": "2024-12-31"}, headers=officer)
    assert r.json()["closing_fen"] == -700
    assert client.post("/api/ledger/transactions", json=dict(body, key="api-4"),
                       headers=auth("buyer")).status_code == 403
    assert client.post("/api/ledger/periods/2024-13/close", headers=officer).status_code == 422


def test_attributed_income_reaches_the_registry_and_measurement(db_url, register_file):
    """The loop of the product: income traced by the ledger becomes the household's
    income in the registry, and the county's assessment sees it."""
    from ecpa.ledger.service import write_attributed_income
    from ecpa.measure.service import assess_region
    from ecpa.registry.importer import import_register
    from ecpa.registry.models import Household, Income
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        h1, h2 = s.scalars(select(Household.id).order_by(Household.id)).all()[:2]
        before, _ = assess_region(s, ACTOR, "621221", 2024)
        accounts(s)
        # Household 1 sold 300,000 fen of walnuts through the cooperative; household 2
        # earned 9,000 fen of wages, less than the 15,000 yuan it reported.
        post(s, ACTOR, "b1", D, "buy-back", [
            Leg("coop", 300_000), Leg("hh:1", -300_000, h1, Channel.INDUSTRY)])
        post(s, ACTOR, "w1", D, "wages", [
            Leg("coop", 9_000), Leg("hh:2", -9_000, h2, Channel.EMPLOYMENT)])
        post(s, ACTOR, "h1", D, "cheaper medicine", [
            Leg("coop", 500), Leg("hh:1", -500, h1, Channel.HEALTH)])
        assert write_attributed_income(s, ACTOR, 2024) == {
            "created": 1, "raised": 0, "unchanged": 1, "outside_scope": 0}
        assert write_attributed_income(s, ACTOR, 2024)["created"] == 0      # idempotent
        incomes = {(i.household_id, i.source.value): i.amount_fen
                   for i in s.scalars(select(Income).where(Income.year == 2024))}
        assert incomes[(h1, "ecommerce")] == 300_000
        assert incomes[(h2, "wages")] == 1_500_000
        assert (h1, "health") not in incomes
        after, _ = assess_region(s, ACTOR, "621221", 2024)
        f0 = before.fgt[(before.fgt["level"] == "total") & before.fgt["subgroup"].isna()
                        & (before.fgt["line"] == "cn_rural")].iloc[0]
        f1 = after.fgt[(after.fgt["level"] == "total") & after.fgt["subgroup"].isna()
                       & (after.fgt["line"] == "cn_rural")].iloc[0]
        # Household 1 (3 persons) had 11,000.50 yuan, 3,666.83 a head, under the line;
        # with 3,000 yuan of e-commerce income it has 4,666.83 and leaves income poverty.
        assert f0["poor_households"] == 2 and f1["poor_households"] == 1
        assert f1["headcount_ratio"] == pytest.approx(f0["headcount_ratio"] - 3 / 7)


def test_post_many_is_checked_and_idempotent(db_url):
    from ecpa.ledger.service import Entry, balances, post_many
    with session_scope(db_url) as s:
        accounts(s)
        entries = [Entry(f"pay:{i}", D, "payroll", [Leg("coop", 100 + i), Leg("hh:1", -100 - i)])
                   for i in range(5)]
        assert post_many(s, ACTOR, entries) == 5
        assert post_many(s, ACTOR, entries) == 0                  # the same batch again
        assert balances(s, ["coop", "hh:1", "hh:2"]) == {"coop": 510, "hh:1": -510, "hh:2": 0}
        with pytest.raises(Conflict, match="pay:2"):
            post_many(s, ACTOR, [Entry("pay:2", D, "payroll", [Leg("coop", 1), Leg("hh:1", -1)])])
        with pytest.raises(InvalidInput, match=r"entry 1 \(bad\): legs do not balance"):
            post_many(s, ACTOR, [Entry("ok", D, "x", [Leg("coop", 1), Leg("hh:1", -1)]),
                                 Entry("bad", D, "x", [Leg("coop", 2), Leg("hh:1", -1)])])
        with pytest.raises(InvalidInput, match="unknown account"):
            post_many(s, ACTOR, [Entry("z", D, "x", [Leg("coop", 1), Leg("nope", -1)])])
        assert s.scalar(select(func.count()).select_from(Transaction)) == 5
