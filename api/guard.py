"""What every request passes: the body-size limit (ASGI middleware), the in-flight gate (503), the bearer token
(401/403), and the mapping of service errors to HTTP statuses with audit rows that hold no report text."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from core.auth import Actor, ForbiddenError
from core.limits import MAX_API_BODY_BYTES, MAX_API_INFLIGHT, MAX_API_TEXT_CHARS, MAX_API_TEXTS
from core.types import ReportLensError
from services.api_tokens import TokenError, authenticate
from services.auth import act_as, record
from services.serving import NotFoundError

log = logging.getLogger("reportlens.api")
RETRY_AFTER_S = 1


class ApiError(ReportLensError):
    """An error with its HTTP status (limits 413, wrong project 403, overload 503...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


# ---------------------------------------------------------------- body size (before anything reads the body)


class BodyLimit:
    """Pure ASGI middleware: a body over ``MAX_API_BODY_BYTES`` gets 413 without the app reading it (the declared
    ``Content-Length`` is checked first, then the bytes actually received); an error the app raises is answered
    here as JSON (:func:`error_response`) instead of reaching the server's traceback log."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = MAX_API_BODY_BYTES.value
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                await self._too_large(scope, receive, send, limit)
                return
        body, sent = b"".join(chunks), [False]

        async def replay() -> dict[str, Any]:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = [False]

        async def watch(message: dict[str, Any]) -> None:
            started[0] = started[0] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, replay, watch)
        except Exception as exc:  # answered here, so the server logs no traceback (it could quote report text)
            if started[0]:
                raise
            await error_response(exc)(scope, receive, send)

    @staticmethod
    async def _too_large(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any],
                         limit: int) -> None:
        msg = (f"The request body is larger than {limit:,} bytes ({MAX_API_BODY_BYTES.env} raises it); send fewer "
               "or shorter texts per request.")
        await JSONResponse({"detail": msg}, status_code=413)(scope, receive, send)


# ---------------------------------------------------------------- overload


class Gate:
    """At most ``size`` requests run the model at once; one more is refused at once (503), never queued."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._sem = threading.BoundedSemaphore(size)

    @contextmanager
    def enter(self) -> Iterator[None]:
        if not self._sem.acquire(blocking=False):
            raise ApiError(503, f"The server is busy: {self.size} requests are running ({MAX_API_INFLIGHT.env}); "
                                f"retry in {RETRY_AFTER_S} s.", {"Retry-After": str(RETRY_AFTER_S)})
        try:
            yield
        finally:
            self._sem.release()


# ---------------------------------------------------------------- who calls


@dataclass(frozen=True)
class Caller:
    actor: Actor
    project: str | None  # the token's project (a scoped token), else None
    project_id: int | None


def token_from(request: Request) -> str | None:
    """``Authorization: Bearer <token>`` (or ``Token <token>``), or HTTP Basic with the token as the password
    (Label Studio's ML backend "Basic Authentication"; the user name is free)."""
    raw = request.headers.get("authorization", "").strip()
    scheme, _, value = raw.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme in ("bearer", "token") and value:
        return value
    if scheme == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    return None


def caller_of(request: Request, where: str = "api") -> Caller:
    info, actor = authenticate(request.app.state.engine, token_from(request), f"{where} {request.url.path}")
    return Caller(actor, info.project, info.project_id)


def scoped(caller: Caller, project: str | None, required: bool = False) -> str | None:
    """The project a request acts on: a scoped token's own (another one is 403), else the request's."""
    if caller.project is not None:
        if project is not None and project != caller.project:
            raise ApiError(403, f"This token is for project {caller.project!r}, not {project!r}; use a token of that "
                                "project (cli.py tokens create --name N --project P).")
        return caller.project
    if required and project is None:
        raise ApiError(422, "Give \"project\": this call needs a project (its model and label config).")
    return project


def check_texts(texts: list[str], count: int | None = None) -> None:
    """The texts-per-request (``count``, default ``len(texts)``) and characters-per-text limits (413)."""
    count = len(texts) if count is None else count
    if count > MAX_API_TEXTS.value:
        raise ApiError(413, f"{count} texts in one request; {MAX_API_TEXTS.hint()}. Split the request.")
    limit = MAX_API_TEXT_CHARS.value
    for i, text in enumerate(texts):
        if len(text) > limit:
            raise ApiError(413, f"Text {i} has {len(text):,} characters; {MAX_API_TEXT_CHARS.hint()}. Split the "
                                "report.")


def status_of(exc: BaseException) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, TokenError):
        return 401
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ReportLensError):
        return 422
    return 500


def error_response(exc: BaseException) -> JSONResponse:
    """The JSON answer for an error: its message for ours, a fixed text for anything else (no traceback, no text)."""
    status = status_of(exc)
    if status == 500:
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        log.error("API request failed: %s at %s:%s", type(exc).__name__, where.filename if where else "?",
                  where.lineno if where else "?")  # the type and place only: messages may quote report text
        return JSONResponse({"detail": f"Internal error ({type(exc).__name__}); the server log has where. The "
                                       "request was not completed."}, status_code=500)
    headers = exc.headers if isinstance(exc, ApiError) else {}
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="reportlens"'}
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def run_audited(request: Request, action: str, work: Callable[[Caller], tuple[Any, dict[str, Any]]],
                where: str = "api") -> Any:
    """Authenticate, run ``work(caller)`` as the token's actor inside the gate, and append one audit row
    (``ok``/``refused``/``failed``, the status, counts from ``work``'s details; never text)."""
    engine = request.app.state.engine
    caller = caller_of(request, where)  # a bad token is audited (and answered 401) by authenticate
    details: dict[str, Any] = {"path": request.url.path}
    with act_as(caller.actor, engine):
        try:
            with request.app.state.gate.enter():
                result, more = work(caller)
        except Exception as exc:
            status = status_of(exc)
            if not isinstance(exc, ForbiddenError):  # a service's refusal is audited by its decorator
                record(action, actor=caller.actor, engine=engine, project=caller.project_id,
                       outcome="failed" if status >= 500 else "refused",
                       details={**details, "status": status, "error": type(exc).__name__})
            raise
        record(action, actor=caller.actor, engine=engine, project=more.pop("project_id", caller.project_id),
               details={**details, "status": 200, **more})
        return result
