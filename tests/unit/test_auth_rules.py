"""The role rule of every public service function (issue 14): each one in ``services/`` carries ``@requires`` or
``@open_to_all`` (services/auth.py), with the permission and audit action this table says. A new public function
without a rule, or with another rule than the table's, fails here: add it to the table deliberately.

``OPEN``: touches no stored data (formatting, parsing) or is how one signs in. ``JOB``: the permission of the job's
kind (train: ``train``, score: ``queue``). A tuple's second item is the audit action of a write (``None``: a read).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import services
from core.auth import Permission
from services.auth import JOB_KIND, Rule, rule_of

P = Permission
OPEN = None
JOB = JOB_KIND
MACHINERY = {"services.auth"}  # the decorator itself and the actor context

RULES: dict[str, tuple[Permission | object | None, str | None]] = {
    # services.app: what the app needs once per process
    "app.database_url": (OPEN, None), "app.open_database": (OPEN, None), "app.load_tokenizer": (OPEN, None),
    "app.announce_app": (OPEN, None),
    "convert.convert_export": (P.DATASET, None),
    # dataset
    "dataset.training_settings": (P.DATASET, None), "dataset.project_alignment": (P.DATASET, None),
    "dataset.project_unk_share": (P.DATASET, None), "dataset.describe_alignment": (OPEN, None),
    "dataset.displayed_spans": (OPEN, None), "dataset.annotation_status": (OPEN, None),
    "dataset.training_status": (OPEN, None), "dataset.bio_rows": (OPEN, None),
    # explain
    "explain.attention_view": (P.EXPLAIN, None), "explain.document_entities": (P.EXPLAIN, None),
    "explain.documents": (P.EXPLAIN, None), "explain.feature_report": (P.EXPLAIN, None),
    "explain.load_corpus": (P.EXPLAIN, None), "explain.model_versions": (P.EXPLAIN, None),
    "explain.pick_version": (P.EXPLAIN, None), "explain.fixed_split": (OPEN, None),
    "explain.available_targets": (OPEN, None), "explain.bar_rows": (OPEN, None),
    "explain.corpus_version": (OPEN, None), "explain.importance_rows": (OPEN, None),
    "explain.matrix_rows": (OPEN, None), "explain.to_csv": (OPEN, None), "explain.group_rows": (OPEN, None),
    # extract
    "extract.document_entities": (P.EXTRACT, None), "extract.extract_text": (P.EXTRACT, None),
    "extract.preannotate_with_rules": (P.EXTRACT, "rules_preannotated"),
    "extract.project_csv": (P.EXTRACT, "entities_exported"), "extract.structured_result": (OPEN, None),
    # files
    "files.atomic_writer": (OPEN, None), "files.csv_cell": (OPEN, None), "files.write_json": (OPEN, None),
    "files.write_jsonl": (OPEN, None),
    # imports
    "imports.import_file": (P.IMPORT, "imported"), "imports.seed_demo": (P.IMPORT, "demo_seeded"),
    "imports.read_config_text": (OPEN, None), "imports.text_key_notes": (OPEN, None),
    # jobs
    "jobs.active_jobs": (P.VIEW, None), "jobs.recent_jobs": (P.VIEW, None), "jobs.last_failure": (P.VIEW, None),
    "jobs.get_job": (P.VIEW, None), "jobs.chain": (OPEN, None), "jobs.queue_job": (JOB, "job_queued"),
    "jobs.cancel_job": (JOB, "job_cancelled"), "jobs.retry_job": (JOB, "job_retried"),
    # Label Studio
    "labelstudio.client.connection": (OPEN, None), "labelstudio.client.server_errors": (OPEN, None),
    "labelstudio.client.connect": (P.LABEL_STUDIO, None), "labelstudio.client.check_connection": (P.LABEL_STUDIO, None),
    "labelstudio.client.open_project": (P.LABEL_STUDIO, None),
    "labelstudio.pull.pull": (P.LABEL_STUDIO, "ls_pulled"),
    "labelstudio.pull.store_export": (P.LABEL_STUDIO, "ls_pulled"),
    "labelstudio.push.push": (P.LABEL_STUDIO, "ls_pushed"),
    "labelstudio.push.batch_from_queue": (P.QUEUE, "batch_created"),
    "labelstudio.push.write_import_file": (P.LABEL_STUDIO, "batch_exported"),
    "labelstudio.push.import_file_bytes": (P.LABEL_STUDIO, "batch_exported"),
    "labelstudio.push.prepare_batch": (P.LABEL_STUDIO, None), "labelstudio.push.linked_project": (P.LABEL_STUDIO, None),
    "labelstudio.push.saved_batches": (P.LABEL_STUDIO, None), "labelstudio.push.build_import_tasks": (OPEN, None),
    # models
    "models.activate": (P.MODELS, "model_activated"), "models.export_merged_version": (P.MODELS, "model_exported"),
    "models.list_versions": (P.MODELS, None), "models.version_rows": (P.MODELS, None),
    "models.resolve_version": (P.MODELS, None), "models.load_version": (P.MODELS, None),
    "models.predict_texts": (P.MODELS, None), "models.evaluate_export": (P.EVALUATE, None),
    "models.predict_export": (P.EVALUATE, "predictions_exported"), "models.version_label": (OPEN, None),
    "models.export_version": (P.MODELS, "model_exported"), "models.onnx_export_of": (P.MODELS, None),
    "models.default_runtime": (OPEN, None), "models.set_default_runtime": (OPEN, None),
    "models.zip_folder": (OPEN, None),
    # overview, projects
    "overview.loop_state": (P.VIEW, None), "overview.most_recent_project": (P.VIEW, None),
    "projects.list_projects": (P.VIEW, None), "projects.get_project": (P.VIEW, None),
    "projects.require_project": (P.VIEW, None), "projects.document_in_project": (P.DATASET, None),
    "projects.get_document": (P.DATASET, None), "projects.list_documents": (P.DATASET, None),
    "projects.delete_project": (P.DELETE_PROJECT, "project_deleted"),
    "projects.label_counts": (P.DATASET, None), "projects.import_history": (P.IMPORT, None),
    # people
    "people.settings": (OPEN, None), "people.sign_in": (OPEN, None), "people.list_people": (P.USERS, None),
    "people.grant_role": (P.USERS, "role_granted"), "people.revoke_role": (P.USERS, "role_revoked"),
    "people.set_active": (P.USERS, "user_active_changed"), "people.audit_trail": (P.AUDIT, None),
    "people.refresh": (OPEN, None), "people.acting_name": (OPEN, None), "people.idle_minutes": (OPEN, None),
    # queue
    "queue.queue_scoring_job": (P.QUEUE, "score_queued"), "queue.score_in_process": (P.QUEUE, "scored"),
    "queue.save_batch": (P.QUEUE, "batch_created"), "queue.active_version": (P.QUEUE, None),
    "queue.document_texts": (P.QUEUE, None), "queue.latest_run": (P.QUEUE, None),
    "queue.ranked_queue": (P.QUEUE, None), "queue.ranked_rows": (P.QUEUE, None),
    "queue.run_duplicates": (P.QUEUE, None), "queue.saved_batches": (P.QUEUE, None),
    "queue.stopping_indicator": (P.QUEUE, None), "queue.duplicate_note": (OPEN, None),
    # review
    "review.decide": (P.REVIEW, "review_decision"), "review.project_csv": (P.REVIEW, "reviews_exported"),
    "review.open_report": (P.REVIEW, None), "review.latest_scoring": (P.REVIEW, None),
    "review.model_versions": (P.REVIEW, None), "review.progress": (P.REVIEW, None),
    "review.project_labels": (P.REVIEW, None), "review.project_tokenizer": (P.REVIEW, None),
    "review.suggested_entities": (P.REVIEW, None), "review.worklist": (P.REVIEW, None),
    "review.snap_range": (OPEN, None), "review.structured": (OPEN, None),
    # serving (issue 15): API tokens, the REST API, the Label Studio ML backend
    "api_tokens.create_token": (P.USERS, "api_token_created"), "api_tokens.list_tokens": (P.USERS, None),
    "api_tokens.revoke_token": (P.USERS, "api_token_revoked"), "api_tokens.hash_token": (OPEN, None),
    "api_tokens.token_actor": (OPEN, None), "api_tokens.authenticate": (OPEN, None),
    "api_tokens.check_serve_startup": (OPEN, None),
    "serving.extract_texts": (P.EXTRACT, None), "serving.predict_objects": (P.EXTRACT, None),
    "serving.served_models": (P.VIEW, None), "serving.find_project": (P.VIEW, None),
    "serving.label_config_of": (OPEN, None), "serving.set_request_threads": (OPEN, None),
    "serving.project_id_of": (P.VIEW, None),
    "labelstudio.backend.setup": (P.EXTRACT, None), "labelstudio.backend.predict": (P.EXTRACT, None),
    "labelstudio.backend.webhook": (P.LABEL_STUDIO, "ls_webhook"), "labelstudio.backend.train_every": (OPEN, None),
    # training
    "training.queue_training": (P.TRAIN, "train_queued"), "training.check": (OPEN, None),
    "training.form_fields": (OPEN, None), "training.task_names": (OPEN, None),
    # the Train page's estimate (issue 17)
    "trainplan.recorded_speeds": (P.TRAIN, None), "trainplan.count_windows": (P.TRAIN, None),
    "trainplan.train_plan": (P.TRAIN, None),
    # adaptation (issue 16)
    "adapt.queue_adaptation": (P.TRAIN, "adapt_queued"), "adapt.form_fields": (OPEN, None),
    "adapt.base_versions": (P.VIEW, None), "adapt.base_choices": (P.VIEW, None),
    "adapt.resolve_base": (P.VIEW, None), "adapt.unk_by_base": (P.DATASET, None),
    "adapt.version_rows": (OPEN, None),
}


def public_service_functions() -> dict[str, object]:
    """Every public function of every ``services`` module: defined there, or re-exported in its ``__all__``."""
    out: dict[str, object] = {}
    for info in pkgutil.walk_packages(services.__path__, "services."):
        if info.name in MACHINERY:
            continue
        mod = importlib.import_module(info.name)
        exported = set(getattr(mod, "__all__", ()))
        for name, obj in vars(mod).items():
            if name.startswith("_") or not inspect.isfunction(obj):
                continue
            if obj.__module__ == info.name or name in exported:
                out[f"{info.name.removeprefix('services.')}.{name}"] = obj
    return out


FUNCTIONS = public_service_functions()


def test_every_public_service_function_is_in_the_table() -> None:
    missing = sorted(set(FUNCTIONS) - set(RULES))
    assert not missing, (f"public service functions without a role rule: {missing}; decorate each with "
                         "@requires(Permission.X[, action=...]) or @open_to_all and add it to RULES here")
    assert not sorted(set(RULES) - set(FUNCTIONS)), "RULES names functions that no longer exist"


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_function_carries_the_rule_of_the_table(name: str) -> None:
    fn = FUNCTIONS.get(name)
    if fn is None:
        pytest.skip(f"{name} does not exist (the previous test says so)")
    permission, action = RULES[name]
    assert rule_of(fn) == Rule(permission, action), f"services.{name}: {rule_of(fn)}"  # type: ignore[arg-type]


def test_writes_are_audited_and_open_functions_write_nothing() -> None:
    open_writes = [n for n, (p, a) in RULES.items() if p is OPEN and a is not None]
    assert not open_writes
    writes = {n for n, (_, a) in RULES.items() if a}
    for must in ("imports.import_file", "review.decide", "training.queue_training", "models.activate",
                 "models.export_merged_version", "labelstudio.push.push", "labelstudio.pull.pull",
                 "jobs.cancel_job", "people.grant_role", "queue.queue_scoring_job", "adapt.queue_adaptation"):
        assert must in writes
