"""Who may do what, where; and the audit log of reads and changes.

Every use-case function receives an ``Actor`` and checks its role and region scope
here, so the CLI, the API and the web pages share one set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..errors import PermissionDenied
from ..regions.codes import scope_prefix
from .models import AuditEntry, Role


@dataclass(frozen=True)
class Actor:
    username: str
    role: Role
    # None: the whole country.
    region_code: str | None = None
    user_id: int | None = None

    def may_reach(self, code: str) -> bool:
        """Whether a region (and so what lies in it) is inside this actor's scope."""
        if self.region_code is None:
            return True
        return code.startswith(scope_prefix(self.region_code))

    @property
    def sees_full_personal_data(self) -> bool:
        """Roles whose work needs full ID and phone numbers (verification, audits)."""
        return self.role in (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)


def system_actor(name: str = "cli") -> Actor:
    """The operator at the machine's own command line: full rights, still audited."""
    return Actor(username=name, role=Role.ADMINISTRATOR)


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(
            f"role {actor.role.value} may not do this (allowed: {allowed})", role=actor.role.value
        )


def require_region(actor: Actor, code: str) -> None:
    if not actor.may_reach(code):
        raise PermissionDenied(
            f"region {code} is outside your scope ({actor.region_code})", region=code
        )


def audit(
    session: Session, actor: Actor, action: str, entity: str, entity_id: object = None,
    detail: dict | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor.username, action=action, entity=entity,
            entity_id=None if entity_id is None else str(entity_id), detail=detail,
        )
    )
