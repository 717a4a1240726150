"""Routes: households (list, detail, create, update, members, incomes, living
conditions, status events, help measures) and the import of register files."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import File, Query, UploadFile
from pydantic import BaseModel, Field

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from ..errors import InvalidInput
from . import service
from .importer import import_register
from .models import (
    CookingFuel,
    Disability,
    Education,
    Health,
    IncomeSource,
    LabourAbility,
    MeasureKind,
    MonitoringCategory,
    OrganisationKind,
    PovertyCause,
    Relation,
    Schooling,
    Status,
    Toilet,
)

router = ApiRouter(prefix="/api", tags=["registry"])

Phone = Annotated[str, Field(pattern=r"^1[3-9]\d{9}$|^0\d{2,3}-?\d{7,8}$")]


class MemberIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    id_number: str = Field(min_length=15, max_length=20,
                           description="resident ID number; birth date and sex are derived from it")
    relation: Relation
    phone: Phone | None = None
    education: Education | None = None
    schooling: Schooling | None = None
    health: Health | None = None
    disability: Disability | None = None
    labour_ability: LabourAbility | None = None
    medical_insurance: bool | None = None
    monthly_wage_fen: int | None = Field(default=None, ge=0)

    def to_input(self) -> service.MemberInput:
        return service.MemberInput(**self.model_dump())


class HouseholdIn(BaseModel):
    number: str = Field(min_length=1, max_length=32)
    village_code: str = Field(pattern=r"^\d{12}$")
    address: str = ""
    phone: Phone | None = None
    main_cause: PovertyCause | None = None
    monitoring_category: MonitoringCategory | None = None
    risk_eliminated: bool | None = None
    members: list[MemberIn] = Field(min_length=1)


class HouseholdChange(BaseModel):
    village_code: str | None = Field(default=None, pattern=r"^\d{12}$")
    address: str | None = None
    phone: Phone | None = None
    main_cause: PovertyCause | None = None
    monitoring_category: MonitoringCategory | None = None
    risk_eliminated: bool | None = None


class IncomeIn(BaseModel):
    year: int = Field(ge=1978, le=2100)
    source: IncomeSource
    amount_fen: int = Field(ge=0, description="integer fen (1 yuan = 100 fen)")


class ConditionsIn(BaseModel):
    year: int = Field(ge=1978, le=2100)
    housing_safe: bool | None = None
    drinking_water_safe: bool | None = None
    cooking_fuel: CookingFuel | None = None
    toilet: Toilet | None = None
    electricity: bool | None = None
    road_access: bool | None = None
    internet_access: bool | None = None
    food_secure: bool | None = None
    clothing_secure: bool | None = None
    medical_expense_fen: int | None = Field(None, ge=0)
    disaster_loss_fen: int | None = Field(None, ge=0)
    cooperative_member: bool | None = None
    indoor_kitchen: bool | None = None
    tap_water: bool | None = None


class MeasureIn(BaseModel):
    kind: MeasureKind
    cadre_name: str = Field(min_length=1, max_length=60)
    start_date: date
    end_date: date | None = None
    description: str = ""
    cadre_user_id: int | None = None


@router.get("/households")
def list_households(
    session: SessionDep, actor: ActorDep,
    region: str | None = Query(None, description="region code: only households under it"),
    status: Status | None = None,
    number: str | None = None,
    name: str | None = Query(None, description="member name prefix"),
    id_number: str | None = Query(None, description="exact resident ID number of a member"),
    phone: str | None = None,
    monitoring_category: MonitoringCategory | None = None,
    page: int = Query(1, ge=1),
    page_size: int = Query(50, ge=1, le=500),
) -> dict:
    flt = service.HouseholdFilter(region, status, number, name, id_number, phone,
                                  monitoring_category)
    total, items = service.list_households(session, actor, flt, page, page_size)
    return {"total": total, "page": page, "page_size": page_size, "items": items}


@router.get("/households/{household_id}")
def household(household_id: int, session: SessionDep, actor: ActorDep,
              reveal: bool = Query(False, description="full ID and phone numbers (officers only; audited)")) -> dict:
    return service.get_household(session, actor, household_id, reveal)


@router.post("/households", status_code=201)
def create_household(body: HouseholdIn, session: SessionDep, actor: ActorDep) -> dict:
    fields = body.model_dump(exclude={"members", "number", "village_code", "address", "phone"})
    h = service.create_household(session, actor, body.number, body.village_code,
                                 [m.to_input() for m in body.members], body.address, body.phone,
                                 **fields)
    return service.household_view(session, h, None)


@router.patch("/households/{household_id}")
def update_household(household_id: int, body: HouseholdChange, session: SessionDep,
                     actor: ActorDep) -> dict:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise InvalidInput("nothing to change")
    h = service.update_household(session, actor, household_id, changes)
    return service.household_view(session, h, None)


@router.post("/households/{household_id}/members", status_code=201)
def add_member(household_id: int, body: MemberIn, session: SessionDep, actor: ActorDep) -> dict:
    m = service.add_member(session, actor, household_id, body.to_input())
    return {"id": m.id, "id_number": m.id_number_masked, "birth_date": m.birth_date.isoformat(),
            "sex": m.sex.value}


@router.put("/households/{household_id}/incomes")
def set_income(household_id: int, body: IncomeIn, session: SessionDep, actor: ActorDep) -> dict:
    service.set_income(session, actor, household_id, body.year, body.source, body.amount_fen)
    return {"ok": True}


@router.put("/households/{household_id}/living-conditions")
def set_conditions(household_id: int, body: ConditionsIn, session: SessionDep,
                   actor: ActorDep) -> dict:
    values = body.model_dump(exclude={"year"}, exclude_unset=True)
    service.set_conditions(session, actor, household_id, body.year, values)
    return {"ok": True}


@router.post("/households/{household_id}/help-measures", status_code=201)
def add_measure(household_id: int, body: MeasureIn, session: SessionDep, actor: ActorDep) -> dict:
    m = service.assign_measure(session, actor, household_id, body.kind, body.cadre_name,
                               body.start_date, body.description, body.end_date,
                               body.cadre_user_id)
    return {"id": m.id, "kind": m.kind.value, "cadre_name": m.cadre_name}


class OrganisationIn(BaseModel):
    kind: OrganisationKind
    name: str = Field(min_length=1, max_length=200)
    credit_code: str = Field(description="unified social credit code (18 characters, GB 32100)")
    region_code: str


def _org(o) -> dict:
    return {"id": o.id, "kind": o.kind.value, "name": o.name, "credit_code": o.credit_code,
            "region_code": o.region_code}


@router.post("/organisations", status_code=201)
def register_organisation(body: OrganisationIn, session: SessionDep, actor: ActorDep) -> dict:
    return _org(service.register_organisation(session, actor, body.kind, body.name,
                                              body.credit_code, body.region_code))


@router.get("/organisations")
def organisations(session: SessionDep, actor: ActorDep, region: str | None = None,
                  kind: OrganisationKind | None = None) -> list[dict]:
    return [_org(o) for o in service.list_organisations(session, actor, region, kind)]


@router.post("/registry/import")
def import_file(session: SessionDep, actor: ActorDep, file: UploadFile = File(...),
                partial: bool = False) -> dict:
    """Import a register file (CSV or XLSX).  Nothing is written when a row is bad,
    unless ``partial``; the response lists every bad row."""
    suffix = Path(file.filename or "upload.csv").suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InvalidInput(f"unsupported file type {suffix!r}: use .csv or .xlsx")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as fh:
            shutil.copyfileobj(file.file, fh)
        result = import_register(session, actor, path, partial=partial, error_file=False)
    body = result.summary()
    body.pop("error_file")
    body["file"] = file.filename
    body["errors"] = [vars(e) if not hasattr(e, "__slots__") else
                      {k: getattr(e, k) for k in e.__slots__} for e in result.errors[:5000]]
    return body
