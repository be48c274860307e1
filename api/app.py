"""The FastAPI application: :func:`create_app` (routes in :mod:`api.routes` and :mod:`api.ls`), error handlers
that answer JSON (our messages, or a fixed text for an unexpected error: never a traceback or report text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.guard import BodyLimit, Gate, error_response
from core.limits import MAX_API_INFLIGHT
from core.types import ReportLensError

TITLE = "ReportLens API"


def _field_errors(exc: RequestValidationError) -> JSONResponse:
    """422 naming each wrong field (``body.texts.1: Input should be a valid string``), without echoing the input."""
    errors = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":  # loc is ("body", character position)
            at = err.get("loc", ("body", "?"))[-1]
            loc = "body"
            msg = f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')} at character {at})"
        errors.append({"field": loc, "message": msg, "type": err.get("type")})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse({"detail": f"Invalid request: {summary}", "errors": errors}, status_code=422)


def create_app(engine: Any, runtime: str | None = None, docs_dir: Path | None = None) -> FastAPI:
    """The app over ``engine``; ``runtime`` (torch, onnx, onnx-int8, a folder) becomes the process' default;
    ``docs_dir``: where Swagger UI's files are (default :data:`api.docs.SWAGGER_DIR`)."""
    from api import ls, routes
    from api.docs import add_docs
    from services.models import default_runtime, set_default_runtime

    set_default_runtime(runtime)
    app = FastAPI(title=TITLE, version="1", description="Structured results and Label Studio predictions from "
                  "ReportLens models. Every call but /health and /ls/health needs 'Authorization: Bearer <token>'.",
                  docs_url=None, redoc_url=None)  # /docs from local files (api.docs), never a CDN
    add_docs(app, TITLE, docs_dir)
    app.state.engine = engine
    app.state.runtime = default_runtime()
    app.state.gate = Gate(MAX_API_INFLIGHT.value)
    app.add_middleware(BodyLimit)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _field_errors(exc)

    @app.exception_handler(ReportLensError)
    async def _error(request: Request, exc: ReportLensError) -> JSONResponse:
        return error_response(exc)  # anything else: BodyLimit answers it (500) before the server logs it

    app.include_router(routes.router)
    app.include_router(ls.router)
    return app
