"""Who may do what inside an organization: the role matrix, in one place.

Services call ``require(actor, Action.X)``; the API docs and the tests read
``ROLE_ACTIONS``. Anyone who is not a member of an organization gets 404 for it
(its existence does not leak); a member whose role lacks the action gets 403.

Member management has two extra rules, enforced in ``saas.services``:
only owners grant, change or remove the owner role, and the last owner can be
neither removed nor demoted. Every member may leave (remove themselves).
"""

from __future__ import annotations

import enum

from regions.errors import PermissionDenied
from saas.models import Membership


class Action(enum.StrEnum):
    ORG_READ = "org.read"
    ORG_UPDATE = "org.update"
    ORG_DELETE = "org.delete"
    MEMBER_READ = "member.read"
    MEMBER_MANAGE = "member.manage"
    PROJECT_READ = "project.read"
    PROJECT_WRITE = "project.write"
    DOCUMENT_READ = "document.read"
    DOCUMENT_WRITE = "document.write"
    DOCUMENT_DELETE = "document.delete"
    TOKEN_MANAGE = "token.manage"  # noqa: S105 - an action name


Role = Membership.Role

_MEMBER = frozenset(
    {
        Action.ORG_READ,
        Action.MEMBER_READ,
        Action.PROJECT_READ,
        Action.DOCUMENT_READ,
        Action.DOCUMENT_WRITE,
    }
)
_ADMIN = _MEMBER | {
    Action.ORG_UPDATE,
    Action.MEMBER_MANAGE,
    Action.PROJECT_WRITE,
    Action.DOCUMENT_DELETE,
    Action.TOKEN_MANAGE,
}
_OWNER = _ADMIN | {Action.ORG_DELETE}

ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.MEMBER: _MEMBER,
    Role.ADMIN: frozenset(_ADMIN),
    Role.OWNER: frozenset(_OWNER),
}


def allows(role: str, action: Action) -> bool:
    return action in ROLE_ACTIONS.get(role, frozenset())


def require(actor: Membership, action: Action) -> None:
    """Raise ``PermissionDenied`` unless the actor's role allows ``action``."""
    if not allows(actor.role, action):
        raise PermissionDenied(f"Your role ({actor.role}) does not allow {action.value}.")
