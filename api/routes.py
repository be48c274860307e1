"""``/health`` and ``/v1``: extract, predict, models (README "Serving")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from api.guard import Caller, check_texts, run_audited, scoped
from services.serving import extract_texts, predict_objects, project_id_of, served_models

router = APIRouter()


class TextsRequest(BaseModel):
    """``text`` (one report) or ``texts`` (several); ``project`` (default: the token's); ``model_version`` (an id,
    ``v3``, or ``reportlens-<project>-v3``; default: the project's active version)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    text: StrictStr | None = Field(None, examples=["Sinus rhythm, heart rate 72 bpm. QTc 430 ms."])
    texts: list[StrictStr] | None = None
    project: StrictStr | None = None
    model_version: StrictStr | StrictInt | None = None

    @model_validator(mode="after")
    def _one_of(self) -> TextsRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give either 'text' (one report) or 'texts' (a list of reports), not both or neither")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


def _counts(texts: list[str], project: str | None, caller: Caller, request: Request) -> dict[str, Any]:
    """The audit row's counts; its project id without another project lookup (a ``ProjectInfo`` counts the
    project's documents and labels: a query over the whole project, per request)."""
    if project is None or project == caller.project:
        pid = caller.project_id
    else:
        pid = project_id_of(request.app.state.engine, project)
    return {"texts": len(texts), "characters": sum(len(t) for t in texts), "project_id": pid}


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    """No token needed: whether the server answers, and its runtime."""
    return {"status": "ok", "runtime": request.app.state.runtime}


@router.post("/v1/extract")
def extract(body: TextsRequest, request: Request) -> dict[str, Any]:
    """One structured result per text (as ``cli.py extract`` prints): entities by label with offsets, score and
    source, normalised values, negated/uncertain findings."""
    texts = body.all_texts()

    def work(caller: Caller) -> tuple[Any, dict[str, Any]]:
        check_texts(texts)
        project = scoped(caller, body.project)
        results = extract_texts(request.app.state.engine, texts, project, body.model_version)
        mv = results[0]["extraction"]["model_version"] if results else None
        return {"results": results}, {**_counts(texts, project, caller, request), "model_version": mv}

    return run_audited(request, "api_extract", work)


@router.post("/v1/predict")
def predict(body: TextsRequest, request: Request) -> dict[str, Any]:
    """One Label Studio prediction object per text (``model_version``, ``score``, ``result`` regions with their
    ``score``), labels and names from the project's label config."""
    texts = body.all_texts()

    def work(caller: Caller) -> tuple[Any, dict[str, Any]]:
        check_texts(texts)
        project = scoped(caller, body.project, required=True)
        preds = predict_objects(request.app.state.engine, texts, project, body.model_version)
        return {"predictions": preds}, {**_counts(texts, project, caller, request),
                                        "regions": sum(len(p["result"]) for p in preds)}

    return run_audited(request, "api_predict", work)


@router.get("/v1/models")
def models(request: Request, project: str | None = None) -> dict[str, Any]:
    """The model versions (a scoped token: its project's only), the active one marked."""

    def work(caller: Caller) -> tuple[Any, dict[str, Any]]:
        rows = served_models(request.app.state.engine, scoped(caller, project))
        return {"models": rows}, {"models": len(rows)}

    return run_audited(request, "api_models", work)
