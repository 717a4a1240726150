"""HTTP route of impact evaluation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service
from .panel import Treatment

router = ApiRouter(prefix="/api/evaluate", tags=["evaluation"])


class ImpactRequest(BaseModel):
    region: str = Field(min_length=6, max_length=12, description="county code or below")
    program_id: int | None = Field(None, description="a farming program's id")
    measure_kind: str | None = Field(None, description="or a help-measure kind, e.g. ecommerce")
    outcome: Literal["income_pc", "poor"] = "income_pc"
    baseline: int = Field(ge=1990, le=2100)
    followup: int = Field(ge=1990, le=2100)
    methods: list[Literal["did", "psm", "ipw"]] = Field(default_factory=lambda: list(service.METHODS))
    trim: str = Field("minmax", description="common support rule: minmax, none, or a in [0, 0.5)")
    neighbours: int = Field(1, ge=1, le=20)
    caliper: float | None = Field(None, gt=0, description="in SDs of the logit of the score")
    cluster: Literal["household", "village"] = "household"
    line: str = "cn_rural"

    @model_validator(mode="after")
    def _one_treatment(self) -> ImpactRequest:
        if (self.program_id is None) == (self.measure_kind is None):
            raise ValueError("give program_id or measure_kind (one of them)")
        if self.followup <= self.baseline:
            raise ValueError("followup must come after baseline")
        return self


@router.post("/impact")
def impact(body: ImpactRequest, session: SessionDep, actor: ActorDep) -> dict:
    """The effect of a program (or help measure) on participants' per-capita income or
    poverty, against comparable non-participants of the region: difference in
    differences, propensity-score matching and inverse-probability weighting, each with
    its standard error, 95% interval, balance table, overlap check and caveats."""
    treatment = Treatment(program_id=body.program_id, measure_kind=body.measure_kind)
    return service.evaluate_impact(
        session, actor, body.region, treatment, body.baseline, body.followup, body.outcome,
        body.methods, body.trim, body.neighbours, body.caliper, body.cluster, body.line)
