"""Contract farming that "costs nothing": advance, buy-back at the protective price,
settlement that pays each household exactly once even when killed half-way."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from ecpa.db import session_factory, session_scope
from ecpa.errors import Conflict, InvalidInput
from ecpa.ledger.models import Transaction
from ecpa.ledger.service import attributed_income, balance
from ecpa.people.access import system_actor
from ecpa.programs.farming import (
    RUNNING_CHICKENS, buy_back, create_program, enrol, household_account, protective_price, record_market_price,
    report_loss, settle)
from ecpa.programs.models import GuarantorKind
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Organisation, OrganisationKind

ACTOR = system_actor("test")
START = date(2024, 3, 1)


@pytest.fixture
def chickens(db_url, register_file):
    """Seed 000's running chickens: inputs 70 yuan a chick, bought back at 100 yuan or more."""
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="跑步鸡合作社",
                            credit_code="93621221MA7K123451", region_code="621221")
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code="621221")
        s.add_all([coop, ent])
        s.flush()
        program = create_program(s, ACTOR, **RUNNING_CHICKENS, start_date=START,
                                 cooperative_id=coop.id, enterprise_id=ent.id)
        h1, h2, h3 = s.scalars(select(Household.id).order_by(Household.number)).all()
        enrol(s, ACTOR, program.id, h1, 100, START)
        enrol(s, ACTOR, program.id, h2, 50, START)
        return program.id, h1, h2, h3


def test_buy_back_at_the_protective_price(db_url, chickens):
    pid, h1, h2, _ = chickens
    end = date(2024, 8, 8)
    with session_scope(db_url) as s:
        from ecpa.programs.models import FarmingProgram
        program = s.get(FarmingProgram, pid)
        assert protective_price(s, program, end) == 10_000  # no market price: the floor
        record_market_price(s, ACTOR, pid, date(2024, 8, 1), 12_800)
        assert protective_price(s, program, end) == 12_800  # market above the floor
        assert protective_price(s, program, date(2024, 7, 31)) == 10_000
        row = buy_back(s, ACTOR, pid, h1, "d1", end, 60, "B")
        assert (row.unit_price_fen, row.amount_fen) == (11_520, 691_200)
        assert buy_back(s, ACTOR, pid, h1, "d1", end, 60, "B").id == row.id  # same key: once
        with pytest.raises(InvalidInput, match="at most 40"):
            buy_back(s, ACTOR, pid, h1, "d2", end, 41, "A")
        with pytest.raises(InvalidInput, match="unknown grade"):
            buy_back(s, ACTOR, pid, h1, "d3", end, 1, "Z")
        with pytest.raises(Conflict, match="another delivery"):
            buy_back(s, ACTOR, pid, h1, "d1", end, 61, "B")


def test_market_plus_premium_per_jin(db_url, chickens):
    with session_scope(db_url) as s:
        from ecpa.programs.models import FarmingProgram
        base = s.get(FarmingProgram, chickens[0])
        wheat = create_program(
            s, ACTOR, name="farming costs nothing", product="wheat", unit="jin", cycle_days=240,
            start_date=START, input_cost_per_unit_fen=40, floor_price_fen=0, premium_fen=3,
            grades={"standard": 10_000}, guarantor_kind=GuarantorKind.ENTERPRISE,
            guarantor_name="platform", cooperative_id=base.cooperative_id,
            enterprise_id=base.enterprise_id)
        record_market_price(s, ACTOR, wheat.id, date(2024, 6, 1), 120)
        assert protective_price(s, wheat, date(2024, 6, 2)) == 123  # market + 0.03 yuan a jin


def test_settlement_killed_half_way_pays_each_household_once(db_url, chickens):
    pid, h1, h2, _ = chickens
    end = date(2024, 8, 8)
    with session_scope(db_url) as s:
        buy_back(s, ACTOR, pid, h1, "h1-all", end, 100, "A")  # 100 × 100 yuan
        report_loss(s, ACTOR, pid, h2, 40)
        buy_back(s, ACTOR, pid, h2, "h2-rest", end, 10, "B")  # 10 × 90 yuan
    with pytest.raises(Conflict, match="cycle ends"):
        settle(session_factory(), ACTOR, pid, date(2024, 8, 1))

    class Killed(Exception):
        pass

    def die(_household):
        raise Killed

    with pytest.raises(Killed):
        settle(session_factory(), ACTOR, pid, end, after_each=die, batch_size=1)
    lines = settle(session_factory(), ACTOR, pid, end)
    again = settle(session_factory(), ACTOR, pid, end)
    assert [l.already_settled for l in lines] == [True, False]
    assert all(l.already_settled for l in again)
    with session_scope(db_url) as s:
        keys = s.scalars(select(Transaction.key).where(Transaction.key.like(f"farm:{pid}:settle:%"))).all()
        assert sorted(keys) == sorted([f"farm:{pid}:settle:{h1}", f"farm:{pid}:settle:{h2}"])
        assert balance(s, household_account(pid, h1)) == 0
        assert balance(s, household_account(pid, h2)) == 0
        # 10,000 - 7,000 = 3,000 yuan paid to household 1 (seed 000: over 3,000 yuan a household).
        from ecpa.programs.models import FarmingProgram
        ent = s.get(FarmingProgram, pid).enterprise_id
        assert balance(s, f"enterprise:{ent}:farm:{pid}:payouts") == -300_000
        assert balance(s, f"guarantor:farm:{pid}") == 260_000  # 3,500 - 900 yuan covered
        income = attributed_income(s, 2024)
        assert income[h1] == {"industry": 300_000}
        assert income[h2] == {"industry": 0}
        assert s.scalar(select(func.count()).select_from(Transaction)) == 2 + 2 + 2
