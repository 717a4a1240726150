"""Duplicate households: detection of each kind, the queue, distinct remembered, merge
keeping both histories, a merge undone, scope and roles; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import (
    COUNTY,
    PW,
    VILLAGE_A,
    VILLAGE_B,
    good_rows,
    login,
    make_id,
    write_csv,
)
from fastapi.testclient import TestClient
from sqlalchemy import select

from ecpa.db import session_scope
from ecpa.duplicates import service as dup
from ecpa.duplicates.models import CandidateState, DuplicateCandidate, HouseholdMerge
from ecpa.errors import Conflict, InvalidInput, PermissionDenied
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import AuditEntry, Role
from ecpa.people.service import create_user
from ecpa.privacy import protector
from ecpa.regions.service import import_regions_csv
from ecpa.registry import service as reg
from ecpa.registry.importer import import_register
from ecpa.registry.models import (
    HelpMeasure,
    Household,
    Income,
    IncomeSource,
    MeasureKind,
    Member,
    Relation,
    Status,
    StatusEvent,
)

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
OTHER_COUNTY = "621202"  # 武都区, Longnan
OTHER_VILLAGE = "621202100001"


def hid(s, number: str) -> int:
    return s.scalar(select(Household.id).where(Household.number == number))


def legacy_member(s, household_id: int, like: Member, name: str | None = None) -> None:
    """The same person loaded into a second household around the registry's checks (a
    legacy load), which is how one ID number ends up in two households."""
    s.add(Member(household_id=household_id, name=name or like.name, relation=Relation.OTHER,
                 sex=like.sex, birth_date=like.birth_date, id_number_enc=like.id_number_enc,
                 id_number_hash=like.id_number_hash, id_number_masked=like.id_number_masked))
    s.flush()


@pytest.fixture
def registry(db_url, tmp_path):
    """The three clean households of conftest, and a village in another county."""
    with session_scope(db_url) as s:
        import_register(s, ADMIN, write_csv(tmp_path / "clean.csv", good_rows()))
        _n, errors = import_regions_csv(s, ADMIN, "\n".join([
            "code,name,parent_code,is_poor",
            f"621202100000,城关镇,{OTHER_COUNTY},no",
            f"{OTHER_VILLAGE},北山村,621202100000,yes"]))
        assert not errors
    return db_url


def _plant_all(s) -> dict[str, int]:
    """One duplicate of each kind; returns the new households' ids."""
    wang = s.scalar(select(Member).where(Member.name == "王大山"))
    # (1) the same ID number: 王大山 also loaded into a household of village B.
    h1 = reg.create_household(s, ADMIN, "6212210101", VILLAGE_B, [reg.MemberInput(
        "王小山", make_id(date(1990, 1, 1), 101, True), Relation.HEAD)])
    legacy_member(s, h1.id, wang, name="王大三")  # misspelt name: only the ID matches
    # (2) the same name and birth date in the same village, another (mistyped) ID number.
    h2 = reg.create_household(s, ADMIN, "6212210102", VILLAGE_A, [reg.MemberInput(
        "赵金花", make_id(date(1955, 1, 5), 102, False), Relation.HEAD)])
    # (3) the same phone as 陈铁柱 (a member's phone) as the household's phone.
    h3 = reg.create_household(s, ADMIN, "6212210103", VILLAGE_B, [reg.MemberInput(
        "周一", make_id(date(1985, 5, 5), 103, True), Relation.HEAD)], phone="15900001111")
    return {"id": h1.id, "name": h2.id, "phone": h3.id}


def test_each_kind_found_with_its_members(registry):
    with session_scope(registry) as s:
        planted = _plant_all(s)
        out = dup.find_in_region(s, OFFICER, COUNTY)
        assert out["pairs_found"] == 3 and out["queued"] == 3
        assert out["pairs_by_reason"] == {"id_number": 1, "name_birth_village": 1, "phone": 1}
        total, items = dup.list_queue(s, OFFICER)
        assert total == 3
        by_pair = {frozenset((i["household_a"]["id"], i["household_b"]["id"])): i for i in items}
        one = by_pair[frozenset((hid(s, "6212210001"), planted["id"]))]
        assert one["reasons"] == ["id_number"]
        m = one["matches"][0]
        assert m["member_a"]["id_number"] == m["member_b"]["id_number"]  # masked, equal
        assert "*" in m["member_a"]["id_number"] and m["member_a"]["name"] == "王**"
        two = by_pair[frozenset((hid(s, "6212210002"), planted["name"]))]
        assert two["reasons"] == ["name_birth_village"]
        three = by_pair[frozenset((hid(s, "6212210003"), planted["phone"]))]
        assert three["reasons"] == ["phone"] and three["household_a"]["phone"] is None
        # Masked everywhere: no full ID or phone number in the queue.
        text = repr(items)
        p = protector()
        for mem in s.scalars(select(Member)):
            assert p.decrypt(mem.id_number_enc, "id_number") not in text
        assert "15900001111" not in text and "赵金花" not in text


def test_no_false_pair_on_clean_data(registry):
    with session_scope(registry) as s:
        # Same name elsewhere, same birth date in another village, and relatives sharing
        # one phone inside a household are not duplicates.
        reg.create_household(s, ADMIN, "6212210201", VILLAGE_B, [reg.MemberInput(
            "赵金花", make_id(date(1955, 1, 5), 201, False), Relation.HEAD)])
        reg.create_household(s, ADMIN, "6212210202", VILLAGE_A, [reg.MemberInput(
            "赵金花", make_id(date(1956, 1, 5), 202, False), Relation.HEAD)])
        reg.create_household(s, ADMIN, "6212210203", VILLAGE_A, [
            reg.MemberInput("孙一", make_id(date(1970, 1, 1), 203, True), Relation.HEAD,
                            phone="13700000000"),
            reg.MemberInput("孙二", make_id(date(1972, 1, 1), 204, False), Relation.SPOUSE,
                            phone="13700000000")], phone="13700000000")
        out = dup.find_in_region(s, ADMIN, "620000")
        assert out["pairs_found"] == 0 and out["queued"] == 0
        assert s.scalar(select(DuplicateCandidate.id)) is None


def test_rerun_does_not_requeue_and_distinct_is_remembered(registry):
    with session_scope(registry) as s:
        planted = _plant_all(s)
        dup.find_in_region(s, OFFICER, COUNTY)
        again = dup.find_in_region(s, OFFICER, COUNTY)
        assert again["pairs_found"] == 3 and again["queued"] == 0 and again["widened"] == 0
        c = dup.pair(s, hid(s, "6212210002"), planted["name"])
        dup.mark_distinct(s, OFFICER, c.id, "two women of the same name and birthday")
        with pytest.raises(Conflict):
            dup.mark_distinct(s, OFFICER, c.id)
        third = dup.find_in_region(s, ADMIN, None)
        assert third["queued"] == 0 and third["reopened"] == 0
        assert s.get(DuplicateCandidate, c.id).state is CandidateState.DISTINCT
        assert dup.list_queue(s, OFFICER)[0] == 2
        # A reason the officer did not judge reopens the pair.
        reg.update_household(s, ADMIN, planted["name"], {"phone": "13600000000"})
        reg.update_household(s, ADMIN, hid(s, "6212210002"), {"phone": "13600000000"})
        fourth = dup.find_in_region(s, OFFICER, COUNTY)
        assert fourth["reopened"] == 1
        c = s.get(DuplicateCandidate, c.id)
        assert c.state is CandidateState.PENDING and c.reasons == 2 | 4


def test_import_queues_candidates(registry, tmp_path):
    rows = [{"household_number": "6212210301", "village_code": VILLAGE_A, "status": "identified",
                 "status_date": "2020-01-01", "name": "陈奶奶",
                 "id_number": make_id(date(1940, 7, 7), 301, False), "relation": "head"},
            {"household_number": "6212210302", "village_code": VILLAGE_B, "name": "陈奶奶",
                 "id_number": make_id(date(1940, 7, 7), 302, False), "relation": "head",
                 "phone": "13812345678"}]
    with session_scope(registry) as s:
        result = import_register(s, ADMIN, write_csv(tmp_path / "more.csv", rows))
        assert result.written
        pending = s.scalars(select(DuplicateCandidate)).all()
        pairs = {frozenset((c.household_a_id, c.household_b_id)): c for c in pending}
        # 陈奶奶 of household 3 (village B) again in village B; the phone of 王大山.
        assert set(pairs) == {frozenset((hid(s, "6212210003"), hid(s, "6212210302"))),
                              frozenset((hid(s, "6212210001"), hid(s, "6212210302")))}
        assert {c.source for c in pending} == {"import"}
        # Re-importing the same file queues nothing new.
        import_register(s, ADMIN, write_csv(tmp_path / "more.csv", rows))
        assert len(s.scalars(select(DuplicateCandidate)).all()) == 2


def _histories(s) -> tuple[int, int]:
    """Household 1 (identified 2016) and a duplicate of it with its own history."""
    keep = hid(s, "6212210001")
    wang = s.scalar(select(Member).where(Member.name == "王大山"))
    other = reg.create_household(s, ADMIN, "6212210401", VILLAGE_A, [
        reg.MemberInput("王大山", make_id(date(1968, 4, 2), 401, True), Relation.HEAD),
        reg.MemberInput("王二丫", make_id(date(2010, 3, 3), 402, False), Relation.CHILD)])
    legacy_member(s, other.id, s.scalar(select(Member).where(Member.name == "李秀兰")))
    assert wang.household_id == keep
    reg.record_status(s, ADMIN, other.id, Status.IDENTIFIED, date(2015, 6, 1), "appraised")
    reg.record_status(s, ADMIN, other.id, Status.EXITED, date(2020, 12, 1), "income above line")
    reg.set_income(s, ADMIN, other.id, 2023, IncomeSource.WAGES, 500_000)
    reg.set_income(s, ADMIN, other.id, 2024, IncomeSource.WAGES, 700_000)  # household 1 has it
    reg.assign_measure(s, ADMIN, other.id, MeasureKind.HEALTH, "刘干部", date(2019, 1, 1))
    return keep, other.id


def test_merge_keeps_both_histories(registry):
    with session_scope(registry) as s:
        keep, gone = _histories(s)
        dup.find_in_region(s, OFFICER, COUNTY)
        c = dup.pair(s, keep, gone)
        assert c.reasons == 1 | 2  # 李秀兰's ID number; 王大山's name and birth date
        before = {e.id for e in s.scalars(select(StatusEvent).where(
            StatusEvent.household_id.in_([keep, gone])))}
        out = dup.merge(s, OFFICER, keep, gone, "one family registered twice")
        d = out["detail"]
        assert len(d["members_moved"]) == 1 and len(d["members_linked"]) == 2
        # Both histories on the survivor; the current status is the latest by date.
        events = s.scalars(select(StatusEvent).where(StatusEvent.household_id == keep)
                           .order_by(StatusEvent.event_date)).all()
        assert {e.id for e in events} == before and len(events) == 3
        assert reg.current_status(s, keep) == (Status.EXITED, date(2020, 12, 1))
        # Members: the child moved; the same people stay on the merged household, linked.
        names = sorted(m.name for m in s.scalars(select(Member).where(Member.household_id == keep)))
        assert names == sorted(["王大山", "李秀兰", "王小明", "王二丫"])
        assert s.scalar(select(Member.id).where(Member.household_id == gone, Member.name == "王大山"))
        # Incomes: 2023 moved; 2024 wages stay on the merged household (the survivor's stand).
        inc = {(i.household_id, i.year, i.source): i.amount_fen for i in s.scalars(
            select(Income).where(Income.household_id.in_([keep, gone])))}
        assert inc[(keep, 2023, IncomeSource.WAGES)] == 500_000
        assert inc[(keep, 2024, IncomeSource.WAGES)] == 600_000
        assert inc[(gone, 2024, IncomeSource.WAGES)] == 700_000
        assert s.scalar(select(HelpMeasure.household_id)) == keep
        # Marked merged, not deleted; the merge record names both and who decided.
        assert s.get(Household, gone).merged_into_id == keep
        rec = s.scalar(select(HouseholdMerge))
        assert (rec.survivor_id, rec.merged_id, rec.decided_by) == (keep, gone, "officer")
        assert [h["status"] for h in rec.detail["merged_status_history"]] == ["identified", "exited"]
        assert s.get(DuplicateCandidate, c.id).state is CandidateState.MERGED
        assert [m["merged_id"] for m in dup.merges_of(s, OFFICER, gone)] == [gone]
        assert dup.household_family(s, keep) == [keep, gone]
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "officer")))
        assert {"duplicates.find", "duplicates.merge", "duplicates.merged_into"} <= actions
        # Never proposed again, and not merged twice.
        assert dup.find_in_region(s, OFFICER, COUNTY)["pairs_found"] == 0
        with pytest.raises(Conflict):
            dup.merge(s, OFFICER, keep, gone)
        # The survivor's record reads whole; the merged one is not exported twice.
        view = reg.get_household(s, OFFICER, keep)
        assert [e["status"] for e in view["status_history"]] == ["identified", "identified", "exited"]


def _snapshot(s, *ids: int) -> dict:
    """What a merge moves, per household: members with their relation, status events,
    incomes, help measures, the phone; and whether it is merged."""
    out = {}
    for h in ids:
        out[h] = {
            "members": sorted((m.id, m.relation.value) for m in s.scalars(
                select(Member).where(Member.household_id == h))),
            "events": sorted(s.scalars(select(StatusEvent.id).where(StatusEvent.household_id == h))),
            "incomes": sorted(s.scalars(select(Income.id).where(Income.household_id == h))),
            "measures": sorted(s.scalars(select(HelpMeasure.id).where(HelpMeasure.household_id == h))),
            "phone": s.get(Household, h).phone_hash,
            "merged_into": s.get(Household, h).merged_into_id,
            "status": reg.current_status(s, h)}
    return out


def test_a_merge_undone_puts_everything_back(registry, tmp_path):
    with session_scope(registry) as s:
        keep, gone = _histories(s)
        # A third household holding 王二丫 again (a legacy load): its pair with the
        # merged household is superseded by the merge, and pending again after the undo.
        third = reg.create_household(s, ADMIN, "6212210402", VILLAGE_B, [reg.MemberInput(
            "钱七", make_id(date(1977, 7, 7), 403, True), Relation.HEAD)], phone="13700001234")
        legacy_member(s, third.id, s.scalar(select(Member).where(Member.name == "王二丫")))
        dup.find_in_region(s, OFFICER, COUNTY)
        c, side = dup.pair(s, keep, gone), dup.pair(s, gone, third.id)
        assert c is not None and side is not None
        before = _snapshot(s, keep, gone)
        rec = dup.merge(s, OFFICER, keep, gone, "one family registered twice")
        assert s.get(DuplicateCandidate, side.id).state is CandidateState.SUPERSEDED
        assert rec["detail"]["superseded_candidates"] == [side.id]
        # Since the merge the survivor got a 2025 income: it stays with the survivor.
        reg.set_income(s, ADMIN, keep, 2025, IncomeSource.WAGES, 800_000)
        added = s.scalar(select(Income.id).where(Income.household_id == keep, Income.year == 2025))

        with pytest.raises(InvalidInput, match="needs a reason"):
            dup.unmerge(s, OFFICER, rec["id"], "  ")
        with pytest.raises(PermissionDenied):
            dup.unmerge(s, Actor("cadre", Role.VILLAGE_CADRE, VILLAGE_A), rec["id"], "wrong")
        with pytest.raises(PermissionDenied):
            dup.unmerge(s, Actor("wudu", Role.COUNTY_OFFICER, OTHER_COUNTY), rec["id"], "wrong")
        out = dup.unmerge(s, OFFICER, rec["id"], "two brothers of the same name")
        after = _snapshot(s, keep, gone)
        after[keep]["incomes"].remove(added)
        assert after == before
        assert (out["undone_by"], out["undo_reason"]) == ("officer", "two brothers of the same name")
        assert out["undo_detail"]["not_found_on_survivor"] == {
            "members": [], "status_events": [], "incomes": [], "conditions": [], "help_measures": []}
        assert sorted(out["undo_detail"]["candidates_reopened"]) == sorted([c.id, side.id])
        assert s.get(DuplicateCandidate, c.id).state is CandidateState.PENDING
        assert s.get(DuplicateCandidate, side.id).state is CandidateState.PENDING
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "officer")))
        assert {"duplicates.unmerge", "duplicates.unmerged"} <= actions
        with pytest.raises(Conflict, match="was undone"):
            dup.unmerge(s, OFFICER, rec["id"], "again")
        # The merged household is live again: its number imports, and it can be merged
        # again (a second record beside the undone one).
        back = import_register(s, ADMIN, write_csv(tmp_path / "back.csv", [{
            "household_number": "6212210401", "village_code": VILLAGE_A, "name": "王大山",
            "id_number": make_id(date(1968, 4, 2), 401, True), "relation": "head"}]))
        assert back.written and back.error_count == 0, back.errors
        again = dup.merge(s, OFFICER, keep, gone, "after all, one family")
        assert [m["id"] for m in dup.merges_of(s, OFFICER, gone)] == [rec["id"], again["id"]]
        # The survivor merged into a third household since: that merge is undone first.
        later = dup.merge(s, OFFICER, third.id, keep, "test")
        with pytest.raises(Conflict, match=f"undo merge {later['id']} first"):
            dup.unmerge(s, OFFICER, again["id"], "wrong")
        dup.unmerge(s, OFFICER, later["id"], "wrong")
        dup.unmerge(s, OFFICER, again["id"], "wrong")
        assert s.get(Household, gone).merged_into_id is None


def test_an_undone_merge_gives_a_moved_head_back_its_household(registry):
    with session_scope(registry) as s:
        keep = hid(s, "6212210001")
        other = reg.create_household(s, ADMIN, "6212210403", VILLAGE_A, [
            reg.MemberInput("孙大海", make_id(date(1970, 2, 2), 404, True), Relation.HEAD)],
            phone="13900009999")
        had_phone = s.get(Household, keep).phone_hash
        rec = dup.merge(s, OFFICER, keep, other.id, "registered twice")  # not detected: by hand
        head = s.scalar(select(Member).where(Member.name == "孙大海"))
        assert (head.household_id, head.relation) == (keep, Relation.OTHER)
        dup.unmerge(s, OFFICER, rec["id"], "a different family")
        s.refresh(head)
        assert (head.household_id, head.relation) == (other.id, Relation.HEAD)
        assert s.get(Household, keep).phone_hash == had_phone


def test_undoing_an_older_merge_and_what_changed_since(registry):
    with session_scope(registry) as s:
        a = reg.create_household(s, ADMIN, "6212210501", VILLAGE_A, [reg.MemberInput(
            "甲一", make_id(date(1971, 1, 1), 501, True), Relation.HEAD)]).id
        b = reg.create_household(s, ADMIN, "6212210502", VILLAGE_A, [reg.MemberInput(
            "乙二", make_id(date(1972, 2, 2), 502, True), Relation.HEAD)], phone="13911112222").id
        c = reg.create_household(s, ADMIN, "6212210503", VILLAGE_B, [reg.MemberInput(
            "丙三", make_id(date(1973, 3, 3), 503, True), Relation.HEAD)], phone="13911112222").id
        reg.record_status(s, ADMIN, b, Status.IDENTIFIED, date(2015, 6, 1), "appraised")
        reg.record_status(s, ADMIN, b, Status.EXITED, date(2020, 12, 1), "income above line")
        reg.record_status(s, ADMIN, a, Status.IDENTIFIED, date(2016, 6, 1), "appraised")
        dup.find_in_region(s, OFFICER, COUNTY)
        side = dup.pair(s, b, c)  # the same phone
        rec = dup.merge(s, OFFICER, a, b, "by hand")
        assert s.get(DuplicateCandidate, side.id).state is CandidateState.SUPERSEDED
        assert s.get(Household, a).phone_hash == s.get(Household, b).phone_hash  # copied
        # A merge recorded before the record kept these two facts.
        row = s.get(HouseholdMerge, rec["id"])
        row.detail = {k: v for k, v in row.detail.items()
                      if k not in ("phone_copied", "superseded_candidates")}
        s.flush()
        # The merged household is closed to changes; the survivor gets a status decided
        # on both histories (exited in 2020, then monitored).
        with pytest.raises(Conflict, match="was merged into"):
            reg.set_income(s, ADMIN, b, 2023, IncomeSource.WAGES, 100)
        reg.record_status(s, ADMIN, a, Status.MONITORED, date(2021, 3, 1), "risk of return")
        dup.merge(s, OFFICER, a, c, "by hand too")  # the third household merged since

        out = dup.unmerge(s, OFFICER, rec["id"], "two families")
        assert s.get(Household, a).phone_hash is None  # the copy, found by its ciphertext
        assert s.get(Household, b).phone_hash is not None
        # The pair of b with c does not come back: c is merged.
        assert s.get(DuplicateCandidate, side.id).state is CandidateState.SUPERSEDED
        assert side.id not in out["undo_detail"]["candidates_reopened"]
        # a: identified 2016 then monitored 2021 — named for the county to review.
        review = out["undo_detail"]["status_changes_to_review"]
        assert [(r["household_id"], r["from"], r["to"]) for r in review] == [
            (a, "identified", "monitored")]
        assert reg.current_status(s, b) == (Status.EXITED, date(2020, 12, 1))


def test_reimport_after_merge(registry, tmp_path):
    with session_scope(registry) as s:
        keep, gone = _histories(s)
        dup.merge(s, OFFICER, keep, gone)
        # The survivor's file imports again (its status now the latest of both histories:
        # exited in 2020); the merged household's number is closed.
        rows = good_rows()
        rows[0].update(status="exited", status_date="2020-12-01")
        again = import_register(s, ADMIN, write_csv(tmp_path / "again.csv", rows))
        assert again.written and again.error_count == 0
        closed = import_register(s, ADMIN, write_csv(tmp_path / "closed.csv", [{
            "household_number": "6212210401", "village_code": VILLAGE_A, "name": "王二丫",
            "id_number": make_id(date(2010, 3, 3), 402, False), "relation": "head"}]))
        assert not closed.written and "was merged into" in closed.errors[0].reason


def test_merge_refused_for_wrong_role_and_out_of_scope(registry):
    with session_scope(registry) as s:
        keep, gone = _histories(s)
        far = reg.create_household(s, ADMIN, "6212020001", OTHER_VILLAGE, [reg.MemberInput(
            "王大山", make_id(date(1968, 4, 2), 77, True), Relation.HEAD)])
        s.add(Member(household_id=far.id, name="x", relation=Relation.OTHER,
                     **{k: getattr(s.scalar(select(Member).where(Member.name == "王小明")), k)
                        for k in ("sex", "birth_date", "id_number_enc", "id_number_hash",
                                  "id_number_masked")}))
        dup.find_in_region(s, ADMIN, "620000")
        cross = dup.pair(s, keep, far.id)
        assert cross is not None and cross.reasons == 1
        cadre = Actor("cadre", Role.VILLAGE_CADRE, VILLAGE_A)
        with pytest.raises(PermissionDenied):
            dup.merge(s, cadre, keep, gone)
        with pytest.raises(PermissionDenied):
            dup.mark_distinct(s, cadre, dup.pair(s, keep, gone).id)
        # The county officer sees the cross-county pair, without the other side's members,
        # but may not decide it: the prefecture (or an administrator) does.
        _, items = dup.list_queue(s, OFFICER)
        shown = next(i for i in items if i["id"] == cross.id)
        far_side = shown["household_b"] if shown["household_b"]["id"] == far.id else shown["household_a"]
        assert far_side["in_scope"] is False and "members" not in far_side
        with pytest.raises(PermissionDenied):
            dup.merge(s, OFFICER, keep, far.id)
        with pytest.raises(PermissionDenied):
            dup.mark_distinct(s, OFFICER, cross.id)
        other_officer = Actor("wudu", Role.COUNTY_OFFICER, OTHER_COUNTY)
        with pytest.raises(PermissionDenied):
            dup.find_in_region(s, other_officer, COUNTY)
        assert s.get(Household, gone).merged_into_id is None
        prefecture = Actor("longnan", Role.COUNTY_OFFICER, "621200")
        dup.merge(s, prefecture, keep, far.id)
        assert s.get(Household, far.id).merged_into_id == keep


def test_api(registry):
    from ecpa.api.app import create_app
    with session_scope(registry) as s:
        create_user(s, ADMIN, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, ADMIN, "cadre_a", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        keep, gone = _histories(s)
    client = TestClient(create_app())
    officer, cadre = login(client, "officer"), login(client, "cadre_a")
    assert client.post("/api/duplicates/find", json={"region_code": COUNTY},
                       headers=cadre).status_code == 403
    r = client.post("/api/duplicates/find", json={"region_code": COUNTY}, headers=officer)
    assert r.status_code == 200 and r.json()["queued"] == 1
    q = client.get("/api/duplicates", headers=officer).json()
    assert q["total"] == 1
    item = q["items"][0]
    assert item["reasons"] == ["id_number", "name_birth_village"]
    r = client.post(f"/api/duplicates/{item['id']}/merge",
                    json={"survivor_household_id": 999999}, headers=officer)
    assert r.status_code == 422
    r = client.post(f"/api/duplicates/{item['id']}/merge",
                    json={"survivor_household_id": keep, "note": "same family"}, headers=officer)
    assert r.status_code == 200, r.text
    assert r.json()["merged_id"] == gone
    assert client.get("/api/duplicates", headers=officer).json()["total"] == 0
    merged = client.get("/api/duplicates", params={"state": "merged"}, headers=officer).json()
    assert merged["items"][0]["state"] == "merged"
    hist = client.get(f"/api/duplicates/merges/{gone}", headers=officer).json()
    assert hist[0]["survivor_id"] == keep
    undo = f"/api/duplicates/merges/{hist[0]['id']}/undo"
    assert client.post(undo, json={"reason": ""}, headers=officer).status_code == 422
    assert client.post(undo, json={"reason": "wrong"}, headers=cadre).status_code == 403
    r = client.post(undo, json={"reason": "two families"}, headers=officer)
    assert r.status_code == 200 and r.json()["undone_by"] == "officer", r.text
    assert client.get("/api/duplicates", headers=officer).json()["total"] == 1
    assert client.post(undo, json={"reason": "again"}, headers=officer).status_code == 409


def test_cli(registry):
    from typer.testing import CliRunner

    from ecpa.cli import app
    with session_scope(registry) as s:
        _histories(s)
    runner = CliRunner()
    r = runner.invoke(app, ["duplicates", "find", "--region", COUNTY])
    assert r.exit_code == 0 and "1 newly queued" in r.output, r.output
    r = runner.invoke(app, ["duplicates", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "6212210401" in r.output
    r = runner.invoke(app, ["duplicates", "distinct", "6212210001", "6212210002"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["duplicates", "merge", "6212210001", "6212210401", "--note", "same"])
    assert r.exit_code == 0 and "merged into 6212210001" in r.output, r.output
    record = r.output.split("merge record ")[1].split(")")[0]
    r = runner.invoke(app, ["duplicates", "unmerge", record])
    assert r.exit_code == 2 and "--reason" in r.output
    r = runner.invoke(app, ["duplicates", "unmerge", record, "--reason", "two families"])
    assert r.exit_code == 0 and f"merge {record} undone: 1 member(s)" in r.output, r.output
