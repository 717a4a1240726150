"""Tables of the registry: households, members, incomes, living conditions, help
measures, the dated history of poverty status, and organisations."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, utcnow
from ..enums import db_enum


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class Relation(StrEnum):
    """Relation to the head of household (与户主关系)."""

    HEAD = "head"
    SPOUSE = "spouse"
    CHILD = "child"
    CHILD_IN_LAW = "child_in_law"
    GRANDCHILD = "grandchild"
    PARENT = "parent"
    GRANDPARENT = "grandparent"
    SIBLING = "sibling"
    OTHER = "other"


class Education(StrEnum):
    PRESCHOOL = "preschool"
    ILLITERATE = "illiterate"
    PRIMARY = "primary"
    JUNIOR = "junior_secondary"
    SENIOR = "senior_secondary"
    VOCATIONAL = "vocational"
    COLLEGE = "college"


class Health(StrEnum):
    HEALTHY = "healthy"
    CHRONIC = "chronic_illness"
    SERIOUS = "serious_illness"
    DISABLED = "disabled"


class Disability(StrEnum):
    NONE = "none"
    GRADE1 = "grade1"
    GRADE2 = "grade2"
    GRADE3 = "grade3"
    GRADE4 = "grade4"


class LabourAbility(StrEnum):
    """劳动技能."""

    SKILLED = "skilled"
    ORDINARY = "ordinary"
    WEAK = "weak"
    LOST = "lost"
    NONE = "none"


class Schooling(StrEnum):
    """在校生状况: school enrolment, for school-age children above all."""

    NOT_STUDENT = "not_student"
    PRESCHOOL = "preschool"
    PRIMARY = "primary"
    JUNIOR = "junior_secondary"
    SENIOR = "senior_secondary"
    VOCATIONAL = "vocational"
    HIGHER = "higher"
    DROPPED_OUT = "dropped_out"


class MonitoringCategory(StrEnum):
    """监测对象类别 of the monitoring system for preventing return to poverty."""

    UNSTABLE_EXITED = "unstable_exited"
    MARGINAL = "marginal"
    SUDDEN_HARDSHIP = "sudden_hardship"


class PovertyCause(StrEnum):
    """主要致贫原因."""

    ILLNESS = "illness"
    DISABILITY = "disability"
    EDUCATION = "education"
    DISASTER = "disaster"
    LACK_LAND = "lack_land"
    LACK_WATER = "lack_water"
    LACK_SKILLS = "lack_skills"
    LACK_LABOUR = "lack_labour"
    LACK_CAPITAL = "lack_capital"
    TRANSPORT = "transport"
    LACK_MOTIVATION = "lack_motivation"
    OTHER = "other"


class Status(StrEnum):
    IDENTIFIED = "identified"
    EXITED = "exited"
    MONITORED = "monitored"
    RETURNED = "returned"


class IncomeSource(StrEnum):
    WAGES = "wages"
    FARMING_BUSINESS = "farming_business"
    PROPERTY = "property"
    TRANSFERS = "transfers"
    ECOMMERCE = "ecommerce"


class CookingFuel(StrEnum):
    ELECTRIC_GAS = "electric_gas"
    BIOGAS = "biogas"
    COAL = "coal"
    WOOD_STRAW = "wood_straw"


class Toilet(StrEnum):
    SANITARY = "sanitary"
    NON_SANITARY = "non_sanitary"
    NONE = "none"


class MeasureKind(StrEnum):
    INDUSTRY = "industry"
    EMPLOYMENT = "employment"
    EDUCATION = "education"
    HEALTH = "health"
    HOUSING = "housing"
    ECOMMERCE = "ecommerce"
    FINANCE = "finance"
    SOCIAL_SECURITY = "social_security"
    ECOLOGY = "ecology"
    RELOCATION = "relocation"
    OTHER = "other"


class OrganisationKind(StrEnum):
    COOPERATIVE = "cooperative"
    ENTERPRISE = "enterprise"


class Household(Base):
    __tablename__ = "household"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # 户编号: unique nationally.
    number: Mapped[str] = mapped_column(String(32), unique=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    phone_hash: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    phone_masked: Mapped[str | None] = mapped_column(String(20), default=None)
    main_cause: Mapped[PovertyCause | None] = mapped_column(
        db_enum(PovertyCause, "poverty_cause"), default=None
    )
    monitoring_category: Mapped[MonitoringCategory | None] = mapped_column(
        db_enum(MonitoringCategory, "monitoring_category"), default=None
    )
    # 风险是否已消除; None when the household is not a monitoring object.
    risk_eliminated: Mapped[bool | None] = mapped_column(Boolean, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # Digest of the household-level fields last imported: a re-import of the same
    # values is recognised and skipped without touching the row.
    import_digest: Mapped[str | None] = mapped_column(String(32), default=None)
    # Duplicates (issue 6, migration 0013): set when this household was merged into
    # another; the row and what stayed on it remain readable, never deleted.
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id"), index=True, default=None)

    members: Mapped[list["Member"]] = relationship(
        back_populates="household", order_by="Member.id", cascade="all, delete-orphan"
    )


class Member(Base):
    __tablename__ = "member"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("household.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    relation: Mapped[Relation] = mapped_column(db_enum(Relation, "relation"))
    sex: Mapped[Sex] = mapped_column(db_enum(Sex, "sex"))
    birth_date: Mapped[date] = mapped_column(Date)
    # Resident ID number (GB 11643): ciphertext, keyed hash for lookup, masked form.
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # Indexed, not unique (duplicates, migration 0013): entry still refuses a number
    # registered elsewhere, but the same person in two households must be storable to be
    # found and adjudicated (legacy loads; the duplicate member kept on a merged household).
    id_number_hash: Mapped[str] = mapped_column(String(40), index=True)
    id_number_masked: Mapped[str] = mapped_column(String(20))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    phone_hash: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    phone_masked: Mapped[str | None] = mapped_column(String(20), default=None)
    education: Mapped[Education | None] = mapped_column(
        db_enum(Education, "education"), default=None
    )
    health: Mapped[Health | None] = mapped_column(db_enum(Health, "health"), default=None)
    disability: Mapped[Disability] = mapped_column(
        db_enum(Disability, "disability"), default=Disability.NONE
    )
    labour_ability: Mapped[LabourAbility | None] = mapped_column(
        db_enum(LabourAbility, "labour_ability"), default=None
    )
    schooling: Mapped[Schooling | None] = mapped_column(
        db_enum(Schooling, "schooling"), default=None
    )
    medical_insurance: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # 务工月收入, integer fen.
    monthly_wage_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    import_digest: Mapped[str | None] = mapped_column(String(32), default=None)

    household: Mapped[Household] = relationship(back_populates="members")


class Income(Base):
    """A household's income from one source in one year, integer fen."""

    __tablename__ = "household_income"
    __table_args__ = (UniqueConstraint("household_id", "year", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column(Integer)
    source: Mapped[IncomeSource] = mapped_column(db_enum(IncomeSource, "income_source"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class LivingConditions(Base):
    __tablename__ = "living_conditions"
    __table_args__ = (UniqueConstraint("household_id", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column(Integer)
    housing_safe: Mapped[bool | None] = mapped_column(Boolean, default=None)
    drinking_water_safe: Mapped[bool | None] = mapped_column(Boolean, default=None)
    cooking_fuel: Mapped[CookingFuel | None] = mapped_column(
        db_enum(CookingFuel, "cooking_fuel"), default=None
    )
    toilet: Mapped[Toilet | None] = mapped_column(db_enum(Toilet, "toilet"), default=None)
    electricity: Mapped[bool | None] = mapped_column(Boolean, default=None)
    road_access: Mapped[bool | None] = mapped_column(Boolean, default=None)
    internet_access: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # What measurement needs beyond the above: food and clothing (两不愁), expenses that
    # push a household back into poverty, and the UNDP county indicators' household parts.
    food_secure: Mapped[bool | None] = mapped_column(Boolean, default=None)
    clothing_secure: Mapped[bool | None] = mapped_column(Boolean, default=None)
    medical_expense_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    disaster_loss_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cooperative_member: Mapped[bool | None] = mapped_column(Boolean, default=None)
    indoor_kitchen: Mapped[bool | None] = mapped_column(Boolean, default=None)
    tap_water: Mapped[bool | None] = mapped_column(Boolean, default=None)


class HelpMeasure(Base):
    """A help measure (帮扶措施) assigned to a household, with its responsible cadre."""

    __tablename__ = "help_measure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("household.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[MeasureKind] = mapped_column(db_enum(MeasureKind, "measure_kind"))
    description: Mapped[str] = mapped_column(Text, default="")
    cadre_name: Mapped[str] = mapped_column(String(60))
    cadre_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), default=None)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, default=None)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class StatusEvent(Base):
    """One dated change of a household's poverty status.  Append-only: the current
    status is the latest event, never a column edited in place."""

    __tablename__ = "status_event"
    __table_args__ = (Index("ix_status_event_household_date", "household_id", "event_date", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    status: Mapped[Status] = mapped_column(db_enum(Status, "poverty_status"))
    event_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Organisation(Base):
    """A cooperative or enterprise, identified by its unified social credit code."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[OrganisationKind] = mapped_column(db_enum(OrganisationKind, "organisation_kind"))
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
