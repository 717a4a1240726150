"""Thousands of random program operations (about 1,500 of them change the books) on PostgreSQL — enrolments, losses, buy-backs,
loans with repayments on a moving business date, settlements killed half-way and re-run,
write-offs, cooperative wages — and after every step: every ledger transaction balances,
the ledger sums to zero, a settled household's program account is empty, and every
loan's receivable equals the principal its replayed book says is outstanding."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from conftest import COUNTY
from ecpa.cooperatives import service as coops
from ecpa.db import session_factory, session_scope
from ecpa.errors import Conflict, InvalidInput, NotFound
from ecpa.ledger.models import Posting
from ecpa.ledger.service import balance, balances
from ecpa.people.access import system_actor
from ecpa.programs import microloans as ml
from ecpa.programs.farming import (buy_back, create_program, enrol, household_account, is_settled,
                                   report_loss, settle)
from ecpa.programs.loans import Repayment
from ecpa.programs.models import GuarantorKind, Loan, LoanStatus
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Organisation, OrganisationKind

ACTOR = system_actor("machine")
START = date(2024, 3, 1)


class Killed(Exception):
    """The server dying half-way through a settlement."""


class ProgramsMachine(RuleBasedStateMachine):
    url = ""
    done = 0  # operations that changed the books, over all runs
    households: list[int] = []
    orgs: tuple[int, int] = (0, 0)

    @initialize()
    def start(self):
        self.tag = uuid.uuid4().hex[:8]
        self.n = 0
        self.day = START
        self.loans: dict[int, int] = {}  # household -> loan
        with session_scope(self.url) as s:
            p = create_program(
                s, ACTOR, name=f"p{self.tag}", product="chicken", unit="chicken", cycle_days=30,
                start_date=START, input_cost_per_unit_fen=7_000, floor_price_fen=10_000,
                premium_fen=0, grades={"A": 10_000, "B": 9_000},
                guarantor_kind=GuarantorKind.GOVERNMENT, guarantor_name="fund",
                cooperative_id=self.orgs[0], enterprise_id=self.orgs[1])
            product = ml.create_product(
                s, ACTOR, name=f"l{self.tag}", lender_name="bank", annual_rate=Decimal("0.06"),
                penalty_rate=Decimal("0.09"), months=4, method=Repayment.EQUAL_PRINCIPAL,
                fee_fen=500, max_principal_fen=1_000_000, interest_subsidy_bp=5_000,
                guarantor_kind=GuarantorKind.COOPERATIVE, guarantor_name="coop", guarantee_bp=7_000)
            self.pid, self.product = p.id, product.id
            # A cooperative of its own per run (one distribution per cooperative and year).
            coop = Organisation(kind=OrganisationKind.COOPERATIVE, name=f"c{self.tag}",
                                credit_code=f"93{self.tag}{self.n:08d}", region_code=COUNTY)
            s.add(coop)
            s.flush()
            self.coop = coop.id
            coops.set_charter(s, ACTOR, coop.id, 2024, "gansu-3.3", collective_region_code=COUNTY)
            for hid in self.households[:2]:
                enrol(s, ACTOR, p.id, hid, 100, START)

    def key(self) -> str:
        self.n += 1
        return f"{self.tag}-{self.n}"

    @rule(h=st.integers(0, 2), units=st.integers(1, 120))
    def enrol(self, h, units):
        with session_scope(self.url) as s:
            try:
                enrol(s, ACTOR, self.pid, self.households[h], units, START)
                ProgramsMachine.done += 1
            except Conflict:
                pass

    @rule(h=st.integers(0, 2), lost=st.integers(0, 60))
    def lose(self, h, lost):
        with session_scope(self.url) as s:
            try:
                report_loss(s, ACTOR, self.pid, self.households[h], lost)
                ProgramsMachine.done += 1
            except (InvalidInput, NotFound):
                pass

    @rule(h=st.integers(0, 2), quantity=st.integers(1, 80), grade=st.sampled_from("AB"))
    def buy(self, h, quantity, grade):
        with session_scope(self.url) as s:
            try:
                buy_back(s, ACTOR, self.pid, self.households[h], self.key(),
                         START + timedelta(days=30), quantity, grade)
                ProgramsMachine.done += 1
            except (InvalidInput, NotFound, Conflict):
                pass

    @rule(h=st.integers(0, 2), principal=st.integers(1_000, 1_000_000), tied=st.booleans())
    def borrow(self, h, principal, tied):
        hid = self.households[h]
        with session_scope(self.url) as s:
            try:
                loan = ml.grant(s, ACTOR, self.product, hid, principal, self.day,
                                repay_from_program_id=self.pid if tied else None)
                ml.disburse(s, ACTOR, loan.id, self.day)
                self.loans[hid] = loan.id
                ProgramsMachine.done += 2
            except (InvalidInput, Conflict):
                pass

    @rule(days=st.integers(0, 60))
    def advance_business_date(self, days):
        self.day += timedelta(days=days)

    @rule(h=st.integers(0, 2), amount=st.integers(1, 400_000))
    def repay(self, h, amount):
        loan = self.loans.get(self.households[h])
        if loan is None:
            return
        with session_scope(self.url) as s:
            try:
                ml.repay(s, ACTOR, loan, self.key(), self.day, amount)
                ProgramsMachine.done += 1
            except (InvalidInput, Conflict):
                pass

    @rule(h=st.integers(0, 2))
    def write_off(self, h):
        loan = self.loans.get(self.households[h])
        if loan is None:
            return
        with session_scope(self.url) as s:
            try:
                ml.write_off(s, ACTOR, loan, self.day, "random")
                ProgramsMachine.done += 1
            except (InvalidInput, Conflict):
                pass

    @rule(kill_after=st.integers(0, 3))
    def settle(self, kill_after):
        day = max(self.day, START + timedelta(days=30))
        done = []

        def after_each(hid):
            done.append(hid)
            ProgramsMachine.done += 1
            if len(done) > kill_after:
                raise Killed

        try:
            settle(session_factory(self.url), ACTOR, self.pid, day, after_each, batch_size=1)
        except (Killed, InvalidInput, Conflict):
            pass
        self.day = day

    @rule(h=st.integers(0, 2), land=st.integers(0, 2_000), labourers=st.integers(0, 3),
          capital=st.integers(0, 2_000_000))
    def join_cooperative(self, h, land, labourers, capital):
        with session_scope(self.url) as s:
            try:
                coops.join(s, ACTOR, self.coop, self.households[h], START,
                           Decimal(land) / 100, labourers, capital)
                ProgramsMachine.done += 1
            except (InvalidInput, Conflict):
                pass

    @rule(h=st.integers(0, 2), month=st.integers(3, 12), days=st.integers(1, 31))
    def labour_and_wages(self, h, month, days):
        with session_scope(self.url) as s:
            try:
                coops.record_labour(s, ACTOR, self.coop, self.households[h], self.key(),
                                    f"2024-{month:02d}", days)
                coops.pay_wages(s, ACTOR, self.coop, f"2024-{month:02d}", date(2024, 12, 31))
                ProgramsMachine.done += 2
            except (InvalidInput, Conflict, NotFound):
                pass

    @rule(surplus=st.integers(0, 10_000_000))
    def distribute_surplus(self, surplus):
        with session_scope(self.url) as s:
            try:
                coops.distribute(s, ACTOR, self.coop, 2024, surplus, date(2024, 12, 31))
                ProgramsMachine.done += 1
            except (InvalidInput, Conflict, NotFound):
                pass

    @invariant()
    def books_balance(self):
        with session_scope(self.url) as s:
            unbalanced = s.execute(select(Posting.transaction_id).group_by(Posting.transaction_id)
                                   .having(func.sum(Posting.amount_fen) != 0)).all()
            assert unbalanced == []
            assert (s.scalar(select(func.coalesce(func.sum(Posting.amount_fen), 0)))) == 0
            accounts = {hid: household_account(self.pid, hid) for hid in self.households}
            owed = balances(s, [a for a in accounts.values()])
            for hid, account in accounts.items():
                if is_settled(s, self.pid, hid):
                    assert owed.get(account, 0) == 0, (hid, owed)
            for hid, loan_id in self.loans.items():
                loan = s.get(Loan, loan_id)
                book = ml.book_of(s, loan)
                expected = 0 if loan.status is LoanStatus.WRITTEN_OFF else book.principal_outstanding_fen
                assert balance(s, ml.receivable_account(loan_id)) == expected


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_thousands_of_random_program_operations_keep_the_books(db_url, register_file):
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="合作社",
                            credit_code="93621221MA7K123451", region_code=COUNTY)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code=COUNTY)
        s.add_all([coop, ent])
        s.flush()
        ProgramsMachine.households = s.scalars(select(Household.id).order_by(Household.number)).all()
        ProgramsMachine.orgs = (coop.id, ent.id)
    ProgramsMachine.url = db_url
    run_state_machine_as_test(ProgramsMachine, settings=settings(
        max_examples=80, stateful_step_count=60, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
    # Thousands of the random operations reached the books (not only refusals).
    assert ProgramsMachine.done >= 1_000, ProgramsMachine.done
