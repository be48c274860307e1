"""Label Studio server access: the connection (URL, token from the environment), the SDK client, and one
:class:`LabelStudioError` (what, how to fix; never the token) for whatever the SDK or the network raises."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.auth import Permission
from core.types import ReportLensError
from services.auth import open_to_all, requires

ENV_URL = "REPORTLENS_LS_URL"
ENV_TOKEN = "REPORTLENS_LS_TOKEN"
DOC_KEY = "reportlens_document_id"  # in every task ReportLens sends: the document it came from


class LabelStudioError(ReportLensError):
    """The Label Studio server could not be used (down, wrong URL, refused token, missing project)."""


@dataclass(frozen=True)
class LsConnection:
    url: str
    token: str = field(repr=False)
    timeout_s: float = 30.0


@open_to_all
def connection(url: str | None = None, token: str | None = None, timeout_s: float = 30.0) -> LsConnection:
    """URL and token from the arguments, else from ``REPORTLENS_LS_URL`` / ``REPORTLENS_LS_TOKEN``."""
    url = (url or os.environ.get(ENV_URL, "")).strip().rstrip("/")
    token = (token or os.environ.get(ENV_TOKEN, "")).strip()
    if not url:
        raise LabelStudioError(f"No Label Studio URL: pass --url http://HOST:PORT or set {ENV_URL}.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabelStudioError(f"Label Studio URL {url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8080.")
    if parts.username or parts.password:
        raise LabelStudioError("Put no user name or password in the Label Studio URL; give the API token instead.")
    if not token:
        raise LabelStudioError(f"No Label Studio API token: set {ENV_TOKEN} (Label Studio: Account & Settings -> "
                               "Access Token) or paste it in the form.")
    return LsConnection(url=url, token=token, timeout_s=timeout_s)


@requires(Permission.LABEL_STUDIO)
def connect(conn: LsConnection) -> Any:
    with warnings.catch_warnings():  # the SDK's pydantic-v1-style models warn on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from label_studio_sdk import LabelStudio

    with server_errors(conn, "connecting"):
        return LabelStudio(base_url=conn.url, api_key=conn.token, timeout=conn.timeout_s)


@open_to_all
@contextmanager
def server_errors(conn: LsConnection, doing: str) -> Iterator[None]:
    """Turn what the SDK and httpx raise into one :class:`LabelStudioError` (what, how to fix); never the token."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ReportLensError:
        raise
    except ApiError as exc:
        code = exc.status_code
        if code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {conn.url} refused the API token (HTTP {code}) while {doing}. Copy the token from "
                f"Label Studio (Account & Settings -> Access Token; a legacy token must be enabled for the "
                f"organization) into {ENV_TOKEN} or the form.") from None
        if code == 404:
            raise LabelStudioError(
                f"Label Studio at {conn.url} answered 404 Not Found while {doing}: the URL does not point at a "
                "Label Studio server, or the project or task is gone. Check the URL (it is the address you open "
                "in the browser, e.g. http://127.0.0.1:8080).") from None
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = f"{body.get('detail') or 'error'} {sorted(body.get('validation_errors') or {}) or ''}".strip()
        raise LabelStudioError(f"Label Studio at {conn.url} answered HTTP {code} while {doing} ({detail[:200]}); "
                               "check the server's log.") from None  # never the body itself: it may quote reports
    except httpx.TimeoutException:
        raise LabelStudioError(f"Label Studio at {conn.url} did not answer within {conn.timeout_s:.0f} s while "
                               f"{doing}; check that the server is up and not overloaded, then retry.") from None
    except httpx.HTTPError as exc:
        raise LabelStudioError(f"Cannot reach Label Studio at {conn.url} while {doing} ({type(exc).__name__}). "
                               f"Is the server running? Start it (`label-studio start`) or fix the URL "
                               f"(--url or {ENV_URL}).") from None
    except ValueError as exc:  # HTML or other non-JSON bodies, responses that do not fit the API's models
        raise LabelStudioError(f"{conn.url} did not answer like a Label Studio server while {doing} "
                               f"({type(exc).__name__}); check the URL.") from None


@requires(Permission.LABEL_STUDIO)
def check_connection(conn: LsConnection) -> dict[str, Any]:
    """Who the token belongs to, and the number of projects it sees (the page's "test connection")."""
    client = connect(conn)
    with server_errors(conn, "checking the token"):
        me = client.users.whoami()
        n_projects = sum(1 for _ in client.projects.list(page_size=100))
    return {"url": conn.url, "user": getattr(me, "email", None) or getattr(me, "username", None),
            "projects": n_projects}


@requires(Permission.LABEL_STUDIO)
def open_project(client: Any, conn: LsConnection, ls_project_id: int, fix: str) -> Any:
    """The Label Studio project, or a :class:`LabelStudioError` saying it is gone and how to go on (``fix``)."""
    with server_errors(conn, f"opening Label Studio project {ls_project_id}"):
        try:
            return client.projects.get(id=ls_project_id)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                raise LabelStudioError(f"Label Studio project {ls_project_id} does not exist at {conn.url} "
                                       f"(deleted?); {fix}") from None
            raise
