"""AppTest per page: each page runs without exception on an empty database and on the demo project, and shows
the values stored in the database."""

from __future__ import annotations

import pytest

from db.engine import make_engine
from db.repository import list_projects

pytestmark = pytest.mark.ui


@pytest.fixture
def demo_db(db):
    from services.imports import seed_demo

    result = seed_demo(make_engine(db), n=40)
    assert result["seeded"] is True
    return db


@pytest.mark.parametrize("migrate_db", [False], ids=["fresh"])  # the app's first start migrates the new file itself
@pytest.mark.parametrize("name", ["pages/home.py", "pages/import_data.py", "pages/dataset.py"])
def test_pages_explain_what_to_do_on_an_empty_database(open_page, name):
    at = open_page(name)
    assert not at.exception, at.exception
    if name != "pages/import_data.py":
        assert any("Import" in i.value for i in at.info), [i.value for i in at.info]


def test_app_navigation_runs_the_overview(demo_db, open_page):
    at = open_page()
    assert not at.exception, at.exception
    assert at.title[0].value == "ReportLens"


def test_home_lists_the_demo_projects(demo_db, open_page):
    """Both demos: the English one and the Chinese one (core.demo_zh), seeded together."""
    from core.demo import DEMO_PROJECT_NAME
    from core.demo_zh import ZH_DEMO_PROJECT_NAME

    at = open_page("pages/home.py")
    assert not at.exception
    df = at.dataframe[0].value
    assert sorted(p.name for p in list_projects(make_engine(demo_db))) == [DEMO_PROJECT_NAME, ZH_DEMO_PROJECT_NAME]
    assert sorted(df["project"].tolist()) == [DEMO_PROJECT_NAME, ZH_DEMO_PROJECT_NAME]
    assert df["documents"].tolist() == [40, 40]


def test_dataset_shows_documents_spans_and_bio(demo_db, open_page):
    at = open_page("pages/dataset.py")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "40"
    proj = list_projects(make_engine(demo_db))[0]  # the English demo, the one a new tab opens
    assert proj.name == "Demo: ECG & radiology"
    assert metrics["Labeled"] == str(proj.n_labeled)
    assert not at.warning  # English demo text: the bundled model reads it
    docs = at.dataframe[0].value
    assert len(docs) == 25 and set(docs.columns) >= {"id", "preview", "spans", "labels"}
    # the BIO view of the selected document: a tag per token
    bio = next((d.value for d in at.dataframe if "tag" in d.value.columns), None)
    assert bio is not None and {"token", "start", "end", "text"} <= set(bio.columns)
    assert len(bio) > 5 and (bio["end"] > bio["start"]).all()
    assert set(bio["tag"]) <= {"O", "(ignored)"} | {f"{p}-{lab}" for lab in proj.labels for p in "BI"}


def test_dataset_search_filters_documents(demo_db, open_page):
    at = open_page("pages/dataset.py")
    at.text_input[0].input("zzzz-not-in-any-report").run()
    assert not at.exception
    assert any("No document matches" in i.value for i in at.info)


def test_dataset_project_alignment_check(demo_db, open_page):
    at = open_page("pages/dataset.py")
    btn = next(b for b in at.button if "Check alignment" in b.label)
    btn.click().run()
    assert not at.exception, at.exception
    assert any("Every span lines up" in s.value for s in at.success)


def test_dataset_document_view_tags_the_stored_spans(demo_db, open_page):
    at = open_page("pages/dataset.py")
    docs = at.dataframe[0].value
    row = docs[docs["spans"] > 0].iloc[0]
    open_doc = next(s for s in at.selectbox if s.label == "Open document")
    open_doc.select(int(row["id"])).run()
    assert not at.exception, at.exception
    bio = next(d.value for d in at.dataframe if "tag" in d.value.columns)
    assert (bio["tag"].str.startswith("B-")).sum() == row["spans"]  # demo spans never overlap
    # the highlighted text is escaped HTML with one <mark> per span
    html_blocks = [h.proto.body for h in at.get("html")]
    assert any(b.count("<mark") == row["spans"] for b in html_blocks)


def test_dataset_warns_when_the_model_cannot_read_the_text(db, tmp_path, open_page):
    import json

    from services.imports import import_file

    export = tmp_path / "zh.json"
    export.write_text(json.dumps([
        {"id": i, "data": {"text": f"窦性心律，心率{60 + i}次/分，未见异常。"}, "annotations": []} for i in range(5)
    ], ensure_ascii=False), encoding="utf-8")
    import_file(make_engine(db), export, "中文心电图")
    at = open_page("pages/dataset.py")
    assert not at.exception, at.exception
    assert any("cannot read" in w.value for w in at.warning)
    unk = next(m.value for m in at.metric if "UNK" in m.label)
    assert float(unk.rstrip("%")) > 20


def test_import_page_shows_the_history_of_the_selected_project(demo_db, open_page):
    at = open_page("pages/import_data.py")
    assert not at.exception, at.exception
    at.session_state["project_name"] = list_projects(make_engine(demo_db))[0].name
    at.run()
    history = at.dataframe[-1].value
    assert len(history) == 1 and "ok" in history.to_string()


@pytest.mark.parametrize("case", ["json", "json-min", "conll", "dicom-file", "dicom-folder", "dicom-zip",
                                  "brat-folder", "brat-zip"])
def test_import_page_reads_every_format_the_readme_names(db, tmp_path, case, open_page):
    from tests.format_samples import format_samples

    sample = format_samples(tmp_path)[case]
    files = sorted(sample.path.iterdir()) if sample.path.is_dir() else [sample.path]
    at = open_page("pages/import_data.py")
    uploader = at.file_uploader[0]
    assert {p.suffix.lower() for p in files} <= set(uploader.allowed_type)
    uploader.set_value([(p.name, p.read_bytes(), "application/octet-stream") for p in files])
    at.text_input[0].input(f"upload {case}").run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert f"({sample.format})" in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Added"] == str(sample.documents) and int(metrics["Spans"]) >= sample.min_spans
    (proj,) = list_projects(make_engine(db))
    assert (proj.name, proj.n_documents) == (f"upload {case}", sample.documents)


def test_an_admin_deletes_the_selected_project_from_the_overview(demo_db, open_page):
    """Single-user mode holds every role, admin included: the Overview's delete panel needs the name typed, then
    the project is gone, the page keeps working on the other one, and the deletion is audited."""
    from db.audit import events

    at = open_page("pages/home.py")
    assert not at.exception, at.exception
    before = {p.name for p in list_projects(make_engine(demo_db))}
    button = at.button(key="delete_project")
    assert button.disabled  # nothing typed yet
    name = next(c.value for c in at.caption if c.value.startswith("Removes **")).split("**")[1]
    assert name in before, name
    at.text_input(key="delete_project_name").input(name).run()
    at.button(key="delete_project").click().run()
    assert not at.exception, at.exception
    assert any(f"Deleted project {name!r}" in s.value for s in at.success), [s.value for s in at.success]
    assert {p.name for p in list_projects(make_engine(demo_db))} == before - {name}
    at.run()
    assert not at.exception, at.exception
    assert [e.outcome for e in events(make_engine(demo_db)) if e.action == "project_deleted"] == ["ok"]
