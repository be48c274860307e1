"""The Label Studio ML backend under ``/ls`` (``/health``, ``/setup``, ``/predict``, ``/webhook``): the protocol
Label Studio 1.23 speaks to a backend connected in a project's Model settings (README "Serving"). Authentication:
Label Studio's "Basic Authentication" with a project-scoped API token as the password (any user name), or
``Authorization: Bearer <token>``; the webhook's own headers carry the same. The token's project is the
ReportLens project the Label Studio project is linked to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.guard import ApiError, Caller, check_texts, run_audited
from services.labelstudio import backend

router = APIRouter(prefix="/ls")


class SetupRequest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    project: str | None = None  # Label Studio's "<id>.<timestamp>"
    schema_: str | None = Field(None, alias="schema")  # the label config XML
    model_version: str | None = None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    tasks: list[dict[str, Any]]
    label_config: str | None = None
    project: str | None = None


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    action: str


def _project(caller: Caller) -> str:
    if caller.project is None:
        raise ApiError(403, "The ML backend needs a token scoped to one ReportLens project (cli.py tokens create "
                            "--name N --project P): that project is the one this Label Studio project feeds.")
    return caller.project


@router.get("/health")
def health() -> dict[str, Any]:
    """What Label Studio checks when connecting (no token needed)."""
    return {"status": "UP", "model_class": "ReportLens"}


@router.post("/setup")
def setup(body: SetupRequest, request: Request) -> dict[str, Any]:
    def work(caller: Caller) -> tuple[Any, dict[str, Any]]:
        return backend.setup(request.app.state.engine, _project(caller), body.schema_), {}

    return run_audited(request, "ls_setup", work, where="ls")


@router.post("/predict")
def predict(body: PredictRequest, request: Request) -> dict[str, Any]:
    def work(caller: Caller) -> tuple[Any, dict[str, Any]]:
        texts = [str(v) for t in body.tasks for v in (t.get("data") or {}).values() if isinstance(v, str)]
        check_texts(texts, count=len(body.tasks))
        out = backend.predict(request.app.state.engine, _project(caller), body.tasks, body.label_config)
        return out, {"tasks": len(body.tasks), "regions": sum(len(r["result"]) for r in out["results"])}

    return run_audited(request, "ls_predict", work, where="ls")


@router.post("/webhook")
def webhook(body: WebhookRequest, request: Request) -> dict[str, Any]:
    def work(caller: Caller) -> tuple[Any, dict[str, Any]]:
        out = backend.webhook(request.app.state.engine, _project(caller), body.model_dump())
        return out, {"event": body.action}

    return run_audited(request, "ls_webhook_request", work, where="ls")
