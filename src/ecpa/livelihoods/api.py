"""HTTP routes of livelihoods: training sessions and attendance, shops and their monthly
net earnings, jobs and wage payments, and the region's yearly summary."""

from __future__ import annotations

from datetime import date

from fastapi import Query
from pydantic import BaseModel, Field, StrictInt

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service
from .models import JobKind, ShopKind, TrainingTopic, WageBasis

router = ApiRouter(prefix="/api/livelihoods", tags=["livelihoods"])

PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"


class TrainingIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    topic: TrainingTopic
    organiser: str = Field("", max_length=200, description="who ran it (or organiser_id)")
    organiser_id: int | None = Field(None, description="a registered organisation")
    region_code: str = Field(description="county, township or village where it was held")
    start_date: date
    end_date: date
    hours: StrictInt = Field(gt=0, le=2000)
    external_attendees: StrictInt = Field(
        0, ge=0, description="cadres and enterprise staff trained who are not in the registry")


class AttendanceIn(BaseModel):
    member_id: StrictInt
    completed: bool = True
    certificate_no: str | None = Field(None, max_length=64)
    subsidy_fen: StrictInt = Field(0, ge=0, description="training subsidy, integer fen")
    paid_on: date | None = Field(None, description="date of the subsidy (default: last day)")


class ShopIn(BaseModel):
    member_id: StrictInt
    name: str = Field(min_length=1, max_length=200)
    kind: ShopKind
    platform: str | None = Field(None, max_length=60, description="JD, Taobao, Pinduoduo …")
    opened_on: date
    training_id: int | None = Field(None, description="the training that led to it")


class CloseIn(BaseModel):
    closed_on: date


class EarningsIn(BaseModel):
    period: str = Field(pattern=PERIOD, description="YYYY-MM")
    net_fen: StrictInt = Field(description="the month's net earnings, integer fen (< 0: a loss)")


class JobIn(BaseModel):
    member_id: StrictInt
    employer_id: int | None = Field(None, description="a registered organisation")
    employer_name: str | None = Field(None, max_length=200, description="an employer outside the registry")
    title: str = Field("", max_length=100)
    kind: JobKind
    transfer: bool = Field(False, description="employment transfer: work outside the home county")
    wage_basis: WageBasis
    wage_fen: StrictInt = Field(gt=0, description="a month's or a day's wage, integer fen")
    start_date: date
    end_date: date | None = None


class WageIn(BaseModel):
    period: str = Field(pattern=PERIOD, description="the month worked, YYYY-MM")
    key: str | None = Field(None, min_length=1, max_length=100,
                            description="idempotency key (default: the period)")
    amount_fen: StrictInt | None = Field(None, gt=0, description="default: from the wage")
    days: StrictInt | None = Field(None, gt=0, le=31, description="days worked (daily wage)")
    paid_on: date | None = None


class EndIn(BaseModel):
    end_date: date


def _attendance(a) -> dict:
    return {"training_id": a.session_id, "member_id": a.member_id, "completed": a.completed,
            "certificate_no": a.certificate_no, "subsidy_fen": a.subsidy_fen}


def _earning(e) -> dict:
    return {"shop_id": e.shop_id, "period": e.period, "net_fen": e.net_fen}


def _wage(w) -> dict:
    return {"job_id": w.job_id, "key": w.key, "period": w.period, "days": w.days,
            "amount_fen": w.amount_fen, "paid_on": w.paid_on.isoformat()}


@router.post("/trainings", status_code=201)
def create_training(body: TrainingIn, session: SessionDep, actor: ActorDep) -> dict:
    t = service.create_training(session, actor, **body.model_dump())
    return service.training_view(session, actor, t.id)


@router.get("/trainings")
def list_trainings(session: SessionDep, actor: ActorDep, region: str | None = None,
                   year: int | None = Query(None, ge=1980, le=2100)) -> list[dict]:
    return service.list_trainings(session, actor, region, year)


@router.get("/trainings/{training_id}")
def show_training(training_id: int, session: SessionDep, actor: ActorDep) -> dict:
    return service.training_view(session, actor, training_id)


@router.post("/trainings/{training_id}/attendance", status_code=201)
def attend(training_id: int, body: AttendanceIn, session: SessionDep, actor: ActorDep) -> dict:
    a = service.record_attendance(session, actor, training_id, body.member_id,
                                  completed=body.completed, certificate_no=body.certificate_no,
                                  subsidy_fen=body.subsidy_fen, paid_on=body.paid_on)
    return _attendance(a)


@router.post("/shops", status_code=201)
def open_shop(body: ShopIn, session: SessionDep, actor: ActorDep) -> dict:
    data = body.model_dump()
    shop = service.open_shop(session, actor, data.pop("member_id"), **data)
    return {"id": shop.id, "member_id": shop.member_id, "name": shop.name,
            "kind": shop.kind.value, "platform": shop.platform, "training_id": shop.training_id,
            "opened_on": shop.opened_on.isoformat()}


@router.get("/shops")
def list_shops(session: SessionDep, actor: ActorDep, region: str | None = None) -> list[dict]:
    return service.list_shops(session, actor, region)


@router.post("/shops/{shop_id}/close")
def close_shop(shop_id: int, body: CloseIn, session: SessionDep, actor: ActorDep) -> dict:
    shop = service.close_shop(session, actor, shop_id, body.closed_on)
    return {"id": shop.id, "closed_on": shop.closed_on.isoformat()}


@router.post("/shops/{shop_id}/earnings", status_code=201)
def shop_earnings(shop_id: int, body: EarningsIn, session: SessionDep, actor: ActorDep) -> dict:
    return _earning(service.record_shop_earnings(session, actor, shop_id, body.period,
                                                 body.net_fen))


@router.post("/jobs", status_code=201)
def add_job(body: JobIn, session: SessionDep, actor: ActorDep) -> dict:
    data = body.model_dump()
    job = service.add_job(session, actor, data.pop("member_id"), **data)
    return service.job_view(session, actor, job.id)


@router.get("/jobs")
def list_jobs(session: SessionDep, actor: ActorDep, region: str | None = None) -> list[dict]:
    return service.list_jobs(session, actor, region)


@router.get("/jobs/{job_id}")
def show_job(job_id: int, session: SessionDep, actor: ActorDep) -> dict:
    return service.job_view(session, actor, job_id)


@router.post("/jobs/{job_id}/wages", status_code=201)
def pay_wage(job_id: int, body: WageIn, session: SessionDep, actor: ActorDep) -> dict:
    return _wage(service.pay_wage(session, actor, job_id, body.period, key=body.key,
                                  amount_fen=body.amount_fen, days=body.days,
                                  paid_on=body.paid_on))


@router.post("/jobs/{job_id}/end")
def end_job(job_id: int, body: EndIn, session: SessionDep, actor: ActorDep) -> dict:
    job = service.end_job(session, actor, job_id, body.end_date)
    return {"id": job.id, "end_date": job.end_date.isoformat()}


@router.get("/summary")
def summary(session: SessionDep, actor: ActorDep, region: str,
            year: int = Query(ge=1980, le=2100)) -> dict:
    """People trained, shops opened, jobs held and the income they brought, for a
    region and year (seed 000 §III.A's figures for any county)."""
    return service.summary(session, actor, region, year)
