"""People and what they may do (issue 14): roles, permissions, the acting person, and the sign-in rules, as pure data.

Four roles; a person may hold several, globally or for one project (``Actor.project_roles``):

- ``annotator``: import, the dataset, the queue, Label Studio push/pull;
- ``clinician``: review, rule/model extraction;
- ``researcher``: train, models, explain, evaluate, and read the audit trail;
- ``admin``: everything, plus people, roles and project deletion.

Every service entry point names the :class:`Permission` it needs (``services.auth.requires``); ``VIEW`` is what
any signed-in person may do (the overview, project and job lists). Who is an admin: the first person to sign in,
and anyone named (subject or e-mail) in ``REPORTLENS_ADMINS``. Roles may also come from an OpenID Connect claim
(``REPORTLENS_ROLE_CLAIM``, e.g. ``groups``) through ``REPORTLENS_ROLE_MAP`` (``group=role,group=role``); they add
to the roles stored in the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from core.errors import IssueCode
from core.types import ReportLensError

ENV_ADMINS = "REPORTLENS_ADMINS"
ENV_ROLE_CLAIM = "REPORTLENS_ROLE_CLAIM"
ENV_ROLE_MAP = "REPORTLENS_ROLE_MAP"
LOCAL_PREFIX = "local:"  # the app in single-user mode
CLI_PREFIX = "cli:"  # cli.py


class Role(StrEnum):
    ANNOTATOR = "annotator"
    CLINICIAN = "clinician"
    RESEARCHER = "researcher"
    ADMIN = "admin"


class Permission(StrEnum):
    VIEW = "view"  # overview, project and job lists: every signed-in person
    IMPORT = "import"
    DATASET = "dataset"
    QUEUE = "queue"
    LABEL_STUDIO = "label_studio"
    REVIEW = "review"
    EXTRACT = "extract"
    TRAIN = "train"
    MODELS = "models"
    EXPLAIN = "explain"
    EVALUATE = "evaluate"
    AUDIT = "audit"  # read the audit trail
    USERS = "users"  # people and their roles
    DELETE_PROJECT = "delete_project"


P = Permission
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType({
    Role.ANNOTATOR: frozenset({P.VIEW, P.IMPORT, P.DATASET, P.QUEUE, P.LABEL_STUDIO}),
    Role.CLINICIAN: frozenset({P.VIEW, P.REVIEW, P.EXTRACT}),
    Role.RESEARCHER: frozenset({P.VIEW, P.TRAIN, P.MODELS, P.EXPLAIN, P.EVALUATE, P.AUDIT}),
    Role.ADMIN: frozenset(Permission),
})
ALL_ROLES: frozenset[Role] = frozenset(Role)


def roles_for(permission: Permission) -> tuple[Role, ...]:
    """The roles that grant ``permission``, in table order (for messages)."""
    return tuple(r for r in Role if permission in ROLE_PERMISSIONS[r])


def parse_role(value: str) -> Role:
    """``"Clinician "`` -> ``Role.CLINICIAN``; anything else is an error naming the roles."""
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise ReportLensError(f"{value!r} is not a role; the roles are {', '.join(Role)}.") from None


class ForbiddenError(ReportLensError):
    """A person asked for something their roles do not allow (issue code ``forbidden``)."""

    code = IssueCode.FORBIDDEN


@dataclass(frozen=True)
class Actor:
    """Who is acting: ``subject`` (OIDC ``sub``, or ``local:<os user>`` / ``cli:<os user>``), a name to show, the
    roles held everywhere, those held per project id, and the ``users`` row (``None`` for local and CLI actors)."""

    subject: str
    display_name: str = ""
    roles: frozenset[Role] = frozenset()
    user_id: int | None = None
    email: str | None = None
    project_roles: Mapping[int, frozenset[Role]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.subject or not isinstance(self.subject, str):
            raise ReportLensError("An actor needs a subject (who is acting); got none.")
        object.__setattr__(self, "roles", frozenset(Role(r) for r in self.roles))
        object.__setattr__(self, "project_roles", MappingProxyType(
            {int(k): frozenset(Role(r) for r in v) for k, v in self.project_roles.items()}))

    @classmethod
    def everyone(cls, subject: str, display_name: str = "") -> Actor:
        """An actor with every role (single-user mode, the CLI)."""
        return cls(subject=subject, display_name=display_name or subject, roles=ALL_ROLES)

    @property
    def label(self) -> str:
        return self.display_name or self.email or self.subject

    def roles_in(self, project_id: int | None = None) -> frozenset[Role]:
        extra = self.project_roles.get(project_id, frozenset()) if project_id is not None else frozenset()
        return self.roles | extra

    def may(self, permission: Permission, project_id: int | None = None) -> bool:
        return any(permission in ROLE_PERMISSIONS[r] for r in self.roles_in(project_id))

    def needs_project(self, permission: Permission) -> bool:
        """Whether the answer depends on the project: not allowed globally, but some project role would allow it."""
        return not self.may(permission) and any(
            permission in ROLE_PERMISSIONS[r] for roles in self.project_roles.values() for r in roles)

    def refusal(self, permission: Permission, what: str, project: str | None = None) -> ForbiddenError:
        held = ", ".join(sorted(self.roles_in())) or "no role"
        where = f" in project {project!r}" if project else ""
        needed = " or ".join(roles_for(permission))
        fix = (f"Ask an admin to give you the {needed} role (Users page, or cli.py users grant); you hold {held}.")
        return ForbiddenError(IssueCode.FORBIDDEN.msg(who=self.label, what=what, where=where, roles=needed, fix=fix))


# ---------------------------------------------------------------- sign-in rules


@dataclass(frozen=True)
class AuthSettings:
    """The sign-in settings from the environment: who is an admin by name, and which claim maps to which roles."""

    admins: frozenset[str] = frozenset()  # subjects or e-mails, compared case-insensitively
    role_claim: str | None = None  # e.g. "groups"
    role_map: Mapping[str, frozenset[Role]] = field(default_factory=dict)  # claim value -> roles

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthSettings:
        admins = frozenset(a.strip().lower() for a in environ.get(ENV_ADMINS, "").split(",") if a.strip())
        claim = environ.get(ENV_ROLE_CLAIM, "").strip() or None
        return cls(admins=admins, role_claim=claim, role_map=parse_role_map(environ.get(ENV_ROLE_MAP, "")))

    def is_named_admin(self, subject: str, email: str | None = None) -> bool:
        return subject.lower() in self.admins or bool(email and email.strip().lower() in self.admins)

    def claim_roles(self, claims: Mapping[str, Any]) -> frozenset[Role]:
        """The roles ``claims[role_claim]`` maps to (a string or a list of strings; unknown values give none)."""
        if not self.role_claim:
            return frozenset()
        raw = claims.get(self.role_claim)
        values: Iterable[Any] = [raw] if isinstance(raw, str) else raw if isinstance(raw, list | tuple) else []
        out: set[Role] = set()
        for value in values:
            out |= self.role_map.get(str(value), frozenset())
        return frozenset(out)


def parse_role_map(text: str) -> dict[str, frozenset[Role]]:
    """``"ecg-team=annotator,cardiology=clinician,cardiology=researcher"`` -> ``{claim value: roles}``."""
    out: dict[str, set[Role]] = {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        value, sep, role = item.rpartition("=")
        if not sep or not value.strip():
            raise ReportLensError(f"{ENV_ROLE_MAP}: {item!r} is not CLAIM_VALUE=ROLE; write e.g. "
                                  "'cardiology=clinician,ml-team=researcher'.")
        try:
            out.setdefault(value.strip(), set()).add(parse_role(role))
        except ReportLensError as exc:
            raise ReportLensError(f"{ENV_ROLE_MAP}: {exc}") from None
    return {k: frozenset(v) for k, v in out.items()}
