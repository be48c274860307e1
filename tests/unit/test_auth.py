"""Roles and the service-layer check (core/auth.py, services/auth.py): the role table, the sign-in rules, the
decorator's refusals and audit rows, and the start-up refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.auth import (
    ALL_ROLES,
    ROLE_PERMISSIONS,
    Actor,
    AuthSettings,
    ForbiddenError,
    Permission,
    Role,
    parse_role_map,
    roles_for,
)
from core.errors import IssueCode
from core.types import ReportLensError
from db.audit import events
from db.engine import make_engine
from services import auth
from services.auth import act_as, check_startup, requires

P = Permission


# ---------------------------------------------------------------- the role table (issue 14)

@pytest.mark.parametrize(("role", "allowed"), [
    (Role.ANNOTATOR, {P.VIEW, P.IMPORT, P.DATASET, P.QUEUE, P.LABEL_STUDIO}),
    (Role.CLINICIAN, {P.VIEW, P.REVIEW, P.EXTRACT}),
    (Role.RESEARCHER, {P.VIEW, P.TRAIN, P.MODELS, P.EXPLAIN, P.EVALUATE, P.AUDIT}),
    (Role.ADMIN, set(Permission)),
])
def test_role_table(role: Role, allowed: set[Permission]) -> None:
    assert ROLE_PERMISSIONS[role] == allowed
    actor = Actor("oidc|1", roles=frozenset({role}))
    assert {p for p in Permission if actor.may(p)} == allowed


def test_only_admins_manage_people_and_delete_projects() -> None:
    assert roles_for(P.USERS) == (Role.ADMIN,) and roles_for(P.DELETE_PROJECT) == (Role.ADMIN,)
    assert roles_for(P.AUDIT) == (Role.RESEARCHER, Role.ADMIN)


def test_several_roles_add_up_and_project_roles_apply_only_there() -> None:
    actor = Actor("oidc|2", roles=frozenset({Role.ANNOTATOR}), project_roles={7: {Role.CLINICIAN}})
    assert actor.may(P.IMPORT) and not actor.may(P.REVIEW)
    assert actor.may(P.REVIEW, 7) and not actor.may(P.REVIEW, 8)
    assert actor.needs_project(P.REVIEW) and not actor.needs_project(P.TRAIN)
    both = Actor("oidc|3", roles=frozenset({Role.ANNOTATOR, Role.RESEARCHER}))
    assert both.may(P.IMPORT) and both.may(P.TRAIN) and not both.may(P.REVIEW)
    assert Actor.everyone("cli:alice").roles == ALL_ROLES


def test_refusal_says_who_what_and_how_to_fix() -> None:
    err = Actor("oidc|4", display_name="Dr Who", roles=frozenset({Role.CLINICIAN})).refusal(P.TRAIN, "train",
                                                                                               "ecg")
    assert isinstance(err, ForbiddenError) and err.code is IssueCode.FORBIDDEN
    msg = str(err)
    assert "Dr Who may not train in project 'ecg'" in msg and "researcher or admin" in msg
    assert "you hold clinician" in msg and "cli.py users grant" in msg


def test_settings_from_env_admins_and_claim_mapping() -> None:
    s = AuthSettings.from_env({"REPORTLENS_ADMINS": " Alice@Example.org ,oidc|9", "REPORTLENS_ROLE_CLAIM": "groups",
                               "REPORTLENS_ROLE_MAP": "cardio=clinician, cardio=researcher,ls-team=annotator"})
    assert s.is_named_admin("oidc|1", "alice@example.org") and s.is_named_admin("OIDC|9")
    assert not s.is_named_admin("oidc|1", "bob@example.org")
    assert s.claim_roles({"groups": ["cardio", "other"]}) == {Role.CLINICIAN, Role.RESEARCHER}
    assert s.claim_roles({"groups": "ls-team"}) == {Role.ANNOTATOR}
    assert s.claim_roles({"groups": 3}) == set() and s.claim_roles({}) == set()
    assert AuthSettings.from_env({}).claim_roles({"groups": ["cardio"]}) == set()


@pytest.mark.parametrize(("text", "match"), [("cardio", "not CLAIM_VALUE=ROLE"), ("cardio=surgeon", "not a role")])
def test_a_bad_role_map_says_what_to_write(text: str, match: str) -> None:
    with pytest.raises(ReportLensError, match=match):
        parse_role_map(text)


# ---------------------------------------------------------------- the decorator

@requires(P.TRAIN, action="thing_done", detail=lambda r: {"n": r})
def _write_thing(engine, project: str, n: int = 1) -> int:
    if n < 0:
        raise ReportLensError("negative")
    return n


@requires(P.VIEW)
def _read_thing(engine, project_id: int) -> str:
    return "read"


@requires(P.VIEW, action="outer_done")
def _outer(engine, project: str) -> int:
    return _write_thing(engine, project, 5)  # a service calling a service: not checked again, one audit row


@pytest.fixture
def engine(sqlite_url):
    from db.importer import import_tasks
    from tests.factories import tiny_tasks

    eng = make_engine(sqlite_url)
    import_tasks(eng, "ecg", tiny_tasks()[:2])
    import_tasks(eng, "ct", tiny_tasks()[2:3])
    return eng


def _mine(engine, **filters):
    return [r for r in events(engine, **filters) if r.action != "import"]


def test_allowed_write_records_ok_with_ids_and_detail(engine) -> None:
    alice = Actor("oidc|alice", roles=frozenset({Role.RESEARCHER}), user_id=3)
    with act_as(alice):
        assert _write_thing(engine, "ecg", 4) == 4
        assert _read_thing(engine, 1) == "read"  # a read: no audit row
    [row] = _mine(engine)
    assert (row.actor, row.actor_user_id, row.action, row.outcome) == ("oidc|alice", 3, "thing_done", "ok")
    assert row.project_id is not None and row.details["n"] == 4 and row.details["project"] == "ecg"
    assert row.details["call"].endswith("_write_thing") and row.at.tzinfo is not None


def test_refused_call_raises_and_is_audited(engine) -> None:
    bob = Actor("oidc|bob", display_name="Bob", roles=frozenset({Role.CLINICIAN}))
    with act_as(bob), pytest.raises(ForbiddenError, match="Bob may not thing done in project 'ecg'"):
        _write_thing(engine, "ecg")
    [row] = _mine(engine)
    assert (row.actor, row.action, row.outcome) == ("oidc|bob", "thing_done", "refused")
    assert row.details["permission"] == "train" and "may not" in row.details["message"]


def test_failed_write_is_audited_with_the_error_type_only(engine) -> None:
    with act_as(Actor.everyone("cli:carol")), pytest.raises(ReportLensError):
        _write_thing(engine, "ecg", -1)
    [row] = _mine(engine)
    assert row.outcome == "failed" and row.details["error"] == "ReportLensError" and "negative" not in str(row)


def test_nobody_acting_is_refused(engine) -> None:
    with act_as(None), pytest.raises(ForbiddenError, match="Nobody signed in"):
        _read_thing(engine, 1)
    assert _mine(engine)[0].actor == auth.NOBODY


def test_project_roles_allow_only_in_their_project(engine) -> None:
    from services.projects import get_project

    ecg = get_project(engine, "ecg").id
    dana = Actor("oidc|dana", roles=frozenset({Role.ANNOTATOR}), project_roles={ecg: {Role.RESEARCHER}})
    with act_as(dana):
        assert _write_thing(engine, "ecg") == 1
        with pytest.raises(ForbiddenError, match="in project 'ct'"):
            _write_thing(engine, "ct")
    assert [r.outcome for r in _mine(engine)] == ["ok", "refused"]


def test_inner_service_calls_are_not_checked_again(engine) -> None:
    clinician = Actor("oidc|eve", roles=frozenset({Role.CLINICIAN}))
    with act_as(clinician):
        assert _outer(engine, "ecg") == 5  # VIEW is enough for the outer call; the inner TRAIN is its business
    assert [r.action for r in _mine(engine)] == ["outer_done"]


def test_act_as_beats_the_resolver_which_beats_the_process_actor() -> None:
    ann = Actor("oidc|ann", roles=frozenset({Role.ANNOTATOR}))
    assert auth.current_actor().subject == "test:pytest"
    auth.set_actor_resolver(lambda: ann)
    try:
        assert auth.current_actor() is ann
        with act_as(Actor.everyone("cli:x")):
            assert auth.current_actor().subject == "cli:x"
    finally:
        auth.set_actor_resolver(None)
    assert auth.current_actor().subject == "test:pytest"


def test_queue_training_needs_the_researcher_role(engine) -> None:
    from core.trainconfig import TrainConfig
    from services.training import queue_training

    with act_as(Actor("oidc|fay", roles=frozenset({Role.CLINICIAN}))), pytest.raises(ForbiddenError):
        queue_training(engine, "ecg", TrainConfig())
    [row] = _mine(engine)
    assert (row.action, row.outcome) == ("train_queued", "refused")


def test_local_and_cli_actors_hold_every_role() -> None:
    assert auth.local_actor().subject.startswith("local:") and auth.local_actor().roles == ALL_ROLES
    assert auth.cli_actor().subject == f"cli:{auth.os_user()}"


# ---------------------------------------------------------------- start-up: loopback, or sign-in configured

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_without_sign_in_is_single_user(host: str) -> None:
    assert check_startup(host, configured=False) == "single-user"


@pytest.mark.parametrize("host", ["0.0.0.0", "", None, "192.168.1.20", "::", "reportlens.example.org"])
def test_other_addresses_without_sign_in_are_refused_with_why_and_how(host: str | None) -> None:
    with pytest.raises(ReportLensError) as info:
        check_startup(host, configured=False)
    msg = str(info.value)
    assert "Refusing to listen" in msg and "sign-in is not configured" in msg
    assert "[auth]" in msg and "secrets.toml" in msg and "loopback" in msg
    assert check_startup(host, configured=True) == "shared"


def test_auth_configured_reads_the_auth_section(tmp_path: Path, monkeypatch) -> None:
    none, empty, other, ok, bad = (tmp_path / f"{n}.toml" for n in ("none", "empty", "other", "ok", "bad"))
    empty.write_text("[auth]\n")
    other.write_text('[server]\nx = 1\n')
    ok.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\ncookie_secret = "s"\n')
    bad.write_text("[auth\n")
    assert not auth.auth_configured([none, empty, other]) and auth.auth_configured([other, ok])
    with pytest.raises(ReportLensError, match="cannot be read as TOML"):
        auth.auth_configured([bad])
    monkeypatch.setenv(auth.ENV_AUTH_SECRETS, str(ok))
    assert auth.secrets_paths() == [ok] and auth.auth_configured()


def test_the_make_run_check_exits_1_with_the_message(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(auth.ENV_AUTH_SECRETS, str(tmp_path / "absent.toml"))
    assert auth.main(["check-startup", "0.0.0.0"]) == 1
    assert "Refusing to listen on 0.0.0.0" in capsys.readouterr().err
    assert auth.main(["check-startup", "127.0.0.1"]) == 0
    assert auth.main(["nonsense"]) == 2


def test_job_calls_need_the_permission_of_the_jobs_kind(engine) -> None:
    from core.jobs import JobKind
    from jobs.queue import enqueue
    from services.jobs import cancel_job
    from services.projects import get_project

    pid = get_project(engine, "ecg").id
    train, score = (enqueue(engine, pid, kind, {}) for kind in (JobKind.TRAIN, JobKind.SCORE))
    annotator = Actor("oidc|gil", roles=frozenset({Role.ANNOTATOR}))
    with act_as(annotator):
        assert cancel_job(engine, score.id).id == score.id  # a scoring run is the annotators' queue
        with pytest.raises(ForbiddenError, match="researcher or admin"):
            cancel_job(engine, train.id)
    rows = [(r.action, r.outcome, r.entity_id, r.project_id) for r in _mine(engine)]
    assert rows == [("job_cancelled", "ok", score.id, pid), ("job_cancelled", "refused", train.id, pid)]


def test_a_call_without_an_engine_is_audited_in_the_engine_the_entry_point_bound(engine, tmp_path) -> None:
    from services.convert import convert_export

    with act_as(Actor("oidc|hal", roles=frozenset({Role.CLINICIAN})), engine), pytest.raises(ForbiddenError):
        convert_export(tmp_path / "export.json", tmp_path / "out.jsonl")
    [row] = _mine(engine)
    assert (row.actor, row.action, row.outcome) == ("oidc|hal", "convert.convert_export", "refused")
    assert not (tmp_path / "out.jsonl").exists()
