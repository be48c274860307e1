"""The page table (one list for the navigation and the Overview), the Dataset page's BIO view with the project's
training settings (a tiny model really trained with ``partial_token="shrink"``) and its preview switches, and the
services behind both pages reading without a query per row."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from streamlit.testing.v1 import AppTest

from core.types import Annotation, ParsedTask, Span
from db.engine import make_engine
from db.importer import import_tasks
from db.model_versions import record_model_version
from tests.factories import cfg, tiny_tasks
from tests.tiny import tiny_model_dir

pytestmark = pytest.mark.ui
TEXT = "bradycardia , heart rate 45 bpm ."
SPAN = Span(2, 11, "RHYTHM")  # "adycardia": starts inside the token "brady" of brady ##card ##ia
# What users have bookmarked: titles and URLs must not change.
EXPECTED_PAGES = [("Overview", ""), ("Import", "import"), ("Dataset", "dataset"), ("Train", "train"),
                  ("Models", "models"), ("Explain", "explain"), ("Queue", "queue"), ("Review", "review"),
                  ("Label Studio", "labelstudio"), ("Users", "users"), ("Audit", "audit")]


def test_overview_lists_exactly_the_pages_of_the_navigation(db, open_page):
    from services.imports import seed_demo
    from ui.navigation import PAGES

    seed_demo(make_engine(db), n=10)
    at = open_page()
    assert not at.exception, at.exception
    assert at.title[0].value == "ReportLens"
    # AppTest keeps the pages st.navigation registered (private attribute: the only view of the sidebar it offers)
    registered = [(p["page_name"], p["url_pathname"]) for p in at._registered_pages.values()]
    assert registered == EXPECTED_PAGES == [(p.title, p.url_path or "") for p in PAGES]
    links = [(link.proto.label, link.proto.page) for link in at.get("page_link")]
    assert links == [(title, url) for title, url in registered if url]  # every page but the Overview itself
    assert ("Label Studio", "labelstudio") in links
    captions = [c.value for c in at.caption]
    assert all(any(p.description in c for c in captions) for p in PAGES[1:])


@pytest.fixture(scope="module")
def shrunk_model(tmp_path_factory):
    """A tiny model trained (a few steps) with partial_token='shrink' on the tiny tasks and one report whose span
    ends inside a token; returns the tasks and the training result."""
    from db.engine import dispose_engine
    from db.migrate import upgrade
    from training.trainer import run_training

    tmp = tmp_path_factory.mktemp("shrunk")
    url = f"sqlite:///{tmp / 'train.db'}"
    upgrade(url)
    engine = make_engine(url)
    tasks = [ParsedTask(text=TEXT, task_id=1000, annotations=(Annotation(source="human", spans=(SPAN,),
                                                                         external_id="1000"),)), *tiny_tasks(8)]
    import_tasks(engine, "tiny", tasks)
    base = str(tiny_model_dir(tmp / "base"))
    result = run_training(engine, 1, cfg(base, max_steps=2, partial_token="shrink"), tmp / "model")
    dispose_engine(url)
    return tasks, result


def open_the_partial_span_document(at: AppTest) -> tuple[list[str], str]:
    """Open the report with the partial span; its tags for brady ##card ##ia, and the caption of the settings."""
    docs = at.dataframe[0].value
    doc_id = int(docs[docs["task"] == 1000]["id"].iloc[0])
    next(s for s in at.selectbox if s.label == "Open document").select(doc_id).run()
    assert not at.exception, at.exception
    bio = next(d.value for d in at.dataframe if "tag" in d.value.columns)
    tags = bio["tag"].tolist()[:3]
    assert bio["token"].tolist()[:3] == ["brady", "##card", "##ia"]
    caption = next(c.value for c in at.caption if "partial_token=" in c.value)
    return tags, caption


def test_dataset_bio_follows_the_active_models_training_settings(db, shrunk_model, open_page):
    tasks, result = shrunk_model
    assert result.config.partial_token == "shrink"  # what the trainer records with the version
    engine = make_engine(db)
    import_tasks(engine, "tiny", tasks)
    at = open_page("pages/dataset.py")
    assert not at.exception, at.exception
    tags, caption = open_the_partial_span_document(at)
    assert tags == ["B-RHYTHM", "I-RHYTHM", "I-RHYTHM"]  # no model yet: the defaults expand to the whole token
    assert "training defaults" in caption and "partial_token='expand'" in caption

    version = record_model_version(engine, "tiny", None, result)
    at = open_page("pages/dataset.py")
    assert not at.exception, at.exception
    tags, caption = open_the_partial_span_document(at)
    assert tags == ["O", "B-RHYTHM", "I-RHYTHM"]  # shrunk: "brady" is not wholly inside the span
    assert f"model {version.name} (active)" in caption and "partial_token='shrink'" in caption
    assert "Preview" not in caption
    # the tokenizer is the version's base model (the tiny one): its words are readable, no [UNK] warning
    assert not any("cannot read" in w.value for w in at.warning)
    issues = [w.value for w in at.warning if "partial_token='shrink'" in w.value]
    assert issues and "only the tokens wholly inside it are tagged" in issues[0]

    # preview the other policy and first-sub-token-only without training
    at.radio(key="bio_partial_1").set_value("expand").run()
    tags, caption = open_the_partial_span_document(at)
    assert tags == ["B-RHYTHM", "I-RHYTHM", "I-RHYTHM"] and caption.startswith("Preview")
    at.checkbox(key="bio_first_only_1").check().run()
    tags, caption = open_the_partial_span_document(at)
    assert tags == ["B-RHYTHM", "(ignored)", "(ignored)"] and "first sub-token tagged" in caption

    # the project-wide check uses the settings shown
    next(b for b in at.button if "Check alignment" in b.label).click().run()
    assert not at.exception, at.exception
    assert not at.success  # the partial span is reported, with the previewed (expand) policy
    issues = at.dataframe[-1].value
    assert "partial_token" in set(issues["code"]) and "expanding to token boundaries" in issues.to_string()


def test_training_settings_from_a_version_recorded_before_the_new_fields(db):
    """A version trained before partial_token existed (its config lacks the key, and has one since removed) shows
    the policy it ran with: the default."""
    from core.trainconfig import TrainConfig
    from services.dataset import training_settings

    engine = make_engine(db)
    import_tasks(engine, "tiny", tiny_tasks(2))
    old = {k: v for k, v in TrainConfig(max_length=64, stride=8).to_dict().items()
           if k not in ("partial_token", "overlap_policy")}
    record_model_version(engine, "tiny", None, {"config": {**old, "removed_option": 1}, "schema": {"labels": []}})
    settings = training_settings(engine, 1)
    assert (settings.align.max_length, settings.align.stride, settings.align.partial_token) == (64, 8, "expand")
    assert settings.source == "model v1 (active)" and settings.note is None and settings.base_model == "bundled"
    record_model_version(engine, "tiny", None, {"config": {**old, "stride": 500}, "schema": {"labels": []}})
    from db.model_versions import activate_model_version

    activate_model_version(engine, 2)
    broken = training_settings(engine, 1)
    assert broken.align == TrainConfig().align() and "model v2" in broken.note and "stride" in broken.note


def _count_selects(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *a: seen.append(statement) if statement.lstrip().upper()
                 .startswith("SELECT") else None)
    return seen


@pytest.mark.parametrize("n_projects", [1, 4])
def test_project_list_reads_in_a_fixed_number_of_queries(db, n_projects):
    from services.projects import list_projects

    engine = make_engine(db)
    for i in range(n_projects):
        tasks = tiny_tasks(3, seed=i)
        tasks[0] = ParsedTask(text="nodule", task_id=1, annotations=(
            Annotation(source="human", spans=(Span(0, 6, f"ONLY_{i}"),), external_id="1"),))
        import_tasks(engine, f"p{i}", tasks)
    selects = _count_selects(engine)
    projects = list_projects(engine)
    assert [p.name for p in projects] == [f"p{i}" for i in range(n_projects)]
    for i, p in enumerate(projects):
        assert f"ONLY_{i}" in p.labels and not any(lab.startswith("ONLY_") and lab != f"ONLY_{i}" for lab in p.labels)
    assert len(selects) == 2, selects  # the projects with their counts, then every project's labels at once


def test_dataset_page_falls_back_when_the_versions_base_model_is_gone(db, tmp_path, open_page):
    from core.trainconfig import TrainConfig

    engine = make_engine(db)
    import_tasks(engine, "tiny", tiny_tasks(3))
    gone = TrainConfig(base_model=str(tmp_path / "deleted-model"), partial_token="shrink").to_dict()
    record_model_version(engine, "tiny", None, {"config": gone, "schema": {"labels": []}})
    at = open_page("pages/dataset.py")
    assert not at.exception, at.exception
    assert any("cannot be loaded" in w.value and "deleted-model" in w.value for w in at.warning)
    bio = next(d.value for d in at.dataframe if "tag" in d.value.columns)
    assert len(bio) > 3  # still shown, with the default tokenizer and the version's alignment
    assert any("model v1 (active)" in c.value and "partial_token='shrink'" in c.value for c in at.caption)
