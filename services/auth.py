"""Who is acting, and the one place that checks and audits what they do (issue 14).

**The actor.** Each entry point says who acts: ``cli.py`` as ``cli:<os user>`` with every role
(:func:`cli_actor`), the app in single-user mode as ``local:<os user>`` (:func:`local_actor`), a signed-in person
from :func:`services.people.sign_in`. :func:`act_as` sets it for a block (a ``contextvars`` variable, so threads and
sessions do not mix); :func:`set_process_actor` for the whole process (single-user mode, the CLI);
:func:`set_actor_resolver` installs a function asked when neither is set (the app's per-session identity,
read again in fragment reruns). Nobody set: every checked call is refused.

**The rule.** Every public service function carries one decorator (a test walks the modules and fails on one
without): :func:`requires` names the :class:`~core.auth.Permission` it needs and, for a write, the audit
``action``; :func:`open_to_all` marks pure helpers that touch no data. A refused call raises
:class:`~core.auth.ForbiddenError` and appends a ``refused`` audit row; an audited write appends ``ok`` (or
``failed``, with the error's type only) after it returns. The audit row's project, document and model version come
from the call's arguments (``project``/``project_id``, ``document_id``/``doc_id``, ``version_id``/``version``,
``job_id``, ``batch_id``) and from ``detail(result)``. A service called by another service runs unchecked: the outer
call was checked and records the action.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import ipaddress
import logging
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.auth import CLI_PREFIX, LOCAL_PREFIX, Actor, ForbiddenError, Permission
from core.errors import IssueCode
from core.types import ReportLensError
from db import audit

log = logging.getLogger("reportlens.auth")
F = TypeVar("F", bound=Callable[..., Any])
RULE_ATTR = "__reportlens_rule__"
ENV_AUTH_SECRETS = "REPORTLENS_AUTH_SECRETS"  # a secrets.toml with the [auth] section, instead of .streamlit/
REPO_ROOT = Path(__file__).resolve().parent.parent
NOBODY = "(nobody)"


@dataclass(frozen=True)
class Rule:
    """What a service function needs: a permission (``None``: open to all, no data touched) and, for a write, the
    audit action it records."""

    permission: Permission | ByJobKind | None
    action: str | None = None


@dataclass(frozen=True)
class ByJobKind:
    """A rule whose permission is that of a job's kind: the call's ``kind`` argument, or the kind of the job its
    ``job_id`` names (``train`` needs ``train``, ``score`` the ``queue``; any other kind ``default``)."""

    by_kind: Mapping[str, Permission]
    default: Permission

    def resolve(self, t: _Target) -> Permission:
        kind = t.kind
        if kind is None and t.entity == "job" and t.entity_id is not None:
            from jobs.queue import get_job

            engine = t.engine if t.engine is not None else _bound_engine()
            job = get_job(engine, t.entity_id) if engine is not None else None
            if job is not None:
                kind = str(job.kind)
                t.project = t.project if t.project is not None else job.project_id
        return self.by_kind.get(str(kind), self.default) if kind is not None else self.default


JOB_KIND = ByJobKind({"train": Permission.TRAIN, "adapt": Permission.TRAIN, "score": Permission.QUEUE},
                     Permission.TRAIN)


@dataclass
class _Binding:
    actor: Actor | None = None
    engine: Any = None


_current: ContextVar[_Binding | None] = ContextVar("reportlens_actor", default=None)
_inside: ContextVar[bool] = ContextVar("reportlens_inside_service", default=False)
_process = _Binding()
_resolver: list[Callable[[], Actor | None]] = []


# ---------------------------------------------------------------- who is acting


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def local_actor() -> Actor:
    """Single-user mode: the OS user running the app, with every role."""
    user = os_user()
    return Actor.everyone(f"{LOCAL_PREFIX}{user}", user)


def cli_actor() -> Actor:
    """``cli.py``: the OS user running it, with every role (the CLI is single-user by nature)."""
    user = os_user()
    return Actor.everyone(f"{CLI_PREFIX}{user}", user)


@contextmanager
def act_as(actor: Actor | None, engine: Any = None) -> Iterator[Actor | None]:
    """Within the block, ``actor`` acts; refusals of calls without an engine argument are audited in ``engine``."""
    token = _current.set(_Binding(actor, engine))
    try:
        yield actor
    finally:
        _current.reset(token)


def set_process_actor(actor: Actor | None, engine: Any = None) -> None:
    """Who acts in this whole process when no :func:`act_as` block says otherwise (``None`` to clear)."""
    _process.actor, _process.engine = actor, engine


def set_actor_resolver(resolver: Callable[[], Actor | None] | None) -> None:
    """A function asked for the actor when no :func:`act_as` block is active (before the process actor)."""
    _resolver.clear()
    if resolver is not None:
        _resolver.append(resolver)


def current_actor() -> Actor | None:
    bound = _current.get()
    if bound is not None:
        return bound.actor
    if _resolver:
        actor = _resolver[0]()
        if actor is not None:
            return actor
    return _process.actor


def _bound_engine() -> Any:
    bound = _current.get()
    return bound.engine if bound is not None and bound.engine is not None else _process.engine


# ---------------------------------------------------------------- the rule on each service function


def rule_of(fn: Any) -> Rule | None:
    return getattr(fn, RULE_ATTR, None)


def open_to_all(fn: F) -> F:
    """Mark a function anyone may call, without a check: helpers that touch no stored data (formatting, parsing, a
    config check), and sign-in itself, which records its own audit rows."""
    setattr(fn, RULE_ATTR, Rule(None))
    return fn


@dataclass
class _Target:
    engine: Any = None
    project: int | str | None = None
    document_id: int | None = None
    model_version_id: int | None = None
    entity: str = ""
    entity_id: int | None = None
    kind: str | None = None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _target(sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Target:
    try:
        a = sig.bind_partial(*args, **kwargs).arguments
    except TypeError:  # the call itself is wrong: the function raises the real error
        a = {}
    t = _Target(engine=a.get("engine"), kind=str(a["kind"]) if a.get("kind") is not None else None)
    project = a.get("project", a.get("project_id", a.get("project_name")))
    t.project = project if isinstance(project, str) else _int(project)
    t.document_id = _int(a.get("document_id", a.get("doc_id")))
    version = a.get("version")
    t.model_version_id = _int(a.get("version_id", a.get("model_version_id", getattr(version, "id", None))))
    if t.project is None and hasattr(version, "project_id"):
        t.project = version.project_id
    for name, entity in (("job_id", "job"), ("batch_id", "queue_batch")):
        if _int(a.get(name)) is not None:
            t.entity, t.entity_id = entity, _int(a.get(name))
    return t


def _write(t: _Target, actor: Actor | None, action: str, outcome: str, details: Mapping[str, Any]) -> None:
    engine = t.engine if t.engine is not None else _bound_engine()
    if engine is None:
        log.warning("audit %s %s by %s not recorded: no database in the call or bound by the entry point",
                    action, outcome, actor.subject if actor else NOBODY)
        return
    data = dict(details)
    cols = {k: data.pop(k) for k in ("project_id", "document_id", "model_version_id") if data.get(k) is not None}
    project = t.project
    audit.record(engine, actor=actor.subject if actor else NOBODY, actor_user_id=actor.user_id if actor else None,
                 action=action, outcome=outcome,
                 project_id=cols.get("project_id", project if isinstance(project, int) else None),
                 project=project if isinstance(project, str) else None,
                 document_id=cols.get("document_id", t.document_id),
                 model_version_id=cols.get("model_version_id", t.model_version_id),
                 entity=t.entity, entity_id=t.entity_id, details=data)


def _allowed(actor: Actor, permission: Permission, t: _Target) -> bool:
    if actor.may(permission):
        return True
    if not actor.needs_project(permission):
        return False
    engine = t.engine if t.engine is not None else _bound_engine()
    project_id = audit.resolve_project_id(engine, project=t.project, document_id=t.document_id,
                                          model_version_id=t.model_version_id) if engine is not None else None
    return project_id is not None and actor.may(permission, project_id)


def _refusal(actor: Actor | None, permission: Permission, what: str, t: _Target) -> ForbiddenError:
    project = str(t.project) if t.project is not None else None
    if actor is None:
        return ForbiddenError(IssueCode.FORBIDDEN.msg(
            who="Nobody signed in", what=what, where="", roles=permission.value,
            fix="Sign in first; a program calling services must say who acts (services.auth.act_as)."))
    return actor.refusal(permission, what, project)


def check(permission: Permission, what: str, *, engine: Any = None, project: int | str | None = None) -> Actor:
    """The current actor when they may ``what``; else a refused audit row and :class:`ForbiddenError`. For the
    few checks that depend on data (a job's kind), inside a decorated function."""
    actor, t = current_actor(), _Target(engine=engine, project=project)
    if actor is not None and _allowed(actor, permission, t):
        return actor
    err = _refusal(actor, permission, what, t)
    _write(t, actor, what.replace(" ", "_")[:50], "refused", {"permission": permission.value, "message": str(err)})
    raise err


def requires(permission: Permission | ByJobKind, *, action: str | None = None,
             detail: Callable[[Any], Mapping[str, Any]] | None = None) -> Callable[[F], F]:
    """The rule of a service function: the current actor needs ``permission`` (globally, or in the call's
    project); with ``action`` the call is a write, audited ``ok``/``failed`` under that name, with
    ``detail(result)`` added to the row (ids and counts only)."""

    def wrap(fn: F) -> F:
        sig = inspect.signature(fn)
        call = f"{fn.__module__.removeprefix('services.')}.{fn.__name__}"
        what = (action or fn.__name__).replace("_", " ")

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if _inside.get():
                return fn(*args, **kwargs)
            actor, t = current_actor(), _target(sig, args, kwargs)
            needed = permission.resolve(t) if isinstance(permission, ByJobKind) else permission
            if actor is None or not _allowed(actor, needed, t):
                err = _refusal(actor, needed, what, t)
                _write(t, actor, action or call, "refused", {"call": call, "permission": needed.value,
                                                              "message": str(err)})
                raise err
            token = _inside.set(True)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if action:
                    _write(t, actor, action, "failed", {"call": call, "error": type(exc).__name__})
                raise
            finally:
                _inside.reset(token)
            if action:
                _write(t, actor, action, "ok", {"call": call, **(detail(result) if detail else {})})
            return result

        setattr(checked, RULE_ATTR, Rule(permission, action))
        return checked  # type: ignore[return-value]

    return wrap


def record(action: str, *, actor: Actor | None = None, engine: Any = None, outcome: str = "ok",
           project: int | str | None = None, document_id: int | None = None, model_version_id: int | None = None,
           details: Mapping[str, Any] | None = None) -> None:
    """Append an audit row for something no decorated call records (a sign-in, a sign-out), by ``actor`` (default:
    the current one); ids and counts only, never report text."""
    t = _Target(engine=engine, project=project, document_id=document_id, model_version_id=model_version_id)
    _write(t, actor if actor is not None else current_actor(), action, outcome, details or {})


# ---------------------------------------------------------------- details of common results


def job_detail(result: Any) -> dict[str, Any]:
    """A queued job (``JobInfo`` or ``(JobInfo, worker_started)``): its id and kind."""
    job = result[0] if isinstance(result, tuple) else result
    return {"job_id": job.id, "kind": str(job.kind), "project_id": job.project_id}


def version_detail(result: Any) -> dict[str, Any]:
    return {"model_version_id": result.id, "project_id": result.project_id, "version": result.name}


# ---------------------------------------------------------------- start-up: single-user mode or sign-in


def is_loopback(host: str | None) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``; an empty host (Streamlit's default: every interface) is not."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secrets_paths() -> list[Path]:
    """Where the ``[auth]`` section may be: ``REPORTLENS_AUTH_SECRETS`` if set, else ``.streamlit/secrets.toml``
    of the repository and of the home folder (Streamlit's own places)."""
    env = os.environ.get(ENV_AUTH_SECRETS, "").strip()
    if env:
        return [Path(env).expanduser()]
    return [REPO_ROOT / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"]


def auth_configured(paths: list[Path] | None = None) -> bool:
    """Whether a secrets file holds an ``[auth]`` section (sign-in with OpenID Connect is configured)."""
    for path in paths if paths is not None else secrets_paths():
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ReportLensError(f"{path} cannot be read as TOML ({exc}); fix the file or remove it.") from None
        if isinstance(data.get("auth"), dict) and data["auth"]:
            return True
    return False


def check_startup(host: str | None, configured: bool) -> str:
    """``"single-user"`` on loopback without sign-in, ``"shared"`` with sign-in; refuses (``ReportLensError``) a
    non-loopback address without sign-in, saying why and how to fix it."""
    if configured:
        return "shared"
    if is_loopback(host):
        return "single-user"
    shown = host or "(every interface)"
    raise ReportLensError(
        f"Refusing to listen on {shown}: sign-in is not configured, and without it anyone who reaches this address "
        "could read every report and act with every role. Either listen on loopback only (make run, without "
        "HOST=...), or configure sign-in: an [auth] section (OpenID Connect) in .streamlit/secrets.toml, or in the "
        f"file named by {ENV_AUTH_SECRETS} (README \"People, roles and audit\").")


def main(argv: list[str] | None = None) -> int:
    """``python -m services.auth check-startup HOST``: what ``make run`` asks before it starts the app."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check-startup":
        print("usage: python -m services.auth check-startup HOST", file=sys.stderr)
        return 2
    try:
        mode = check_startup(args[1], auth_configured())
    except ReportLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ReportLens starts in {mode} mode on {args[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
