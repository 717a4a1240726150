from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, Boolean, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..enums import db_enum


class Level(StrEnum):
    PROVINCE = "province"
    PREFECTURE = "prefecture"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


LEVEL_ORDER = [Level.PROVINCE, Level.PREFECTURE, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE]


class Region(Base):
    """One administrative division.

    County and above carry GB/T 2260 six-digit codes; townships and villages the
    12-digit statistical division codes, whose first six digits are their county's.
    """

    __tablename__ = "region"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[Level] = mapped_column(db_enum(Level, "region_level"), index=True)
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("region.code"), index=True, default=None
    )
    # 贫困县 / 贫困村 flags.
    is_poor: Mapped[bool] = mapped_column(Boolean, default=False)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    # County profile: industries, infrastructure, logistics coverage (free-form, documented keys).
    profile: Mapped[dict | None] = mapped_column(JSON, default=None)
