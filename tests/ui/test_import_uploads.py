"""AppTest of the Import page's uploads (issue 13): several JSON exports are several imports (never a "DICOM folder"
of 0 reports under a green banner), the uploader is fresh after an import, and a new tab's target is a new project
named after the file, not the first project of the list."""

from __future__ import annotations

import json

import pytest

from core.demo import generate_demo_export
from db.engine import make_engine
from db.repository import list_projects

pytestmark = pytest.mark.ui


def export(n: int, seed: int, first_id: int) -> bytes:
    tasks = generate_demo_export(n=n, seed=seed)
    for i, t in enumerate(tasks):
        t["id"] = first_id + i
    return json.dumps(tasks).encode()


def upload(at, *files: tuple[str, bytes]) -> None:  # noqa: ANN001
    at.file_uploader[0].set_value([(name, data, "application/json") for name, data in files])


def click_import(at) -> None:  # noqa: ANN001
    next(b for b in at.button if b.label == "Import").click().run()


def test_two_json_exports_are_two_imports_and_the_uploader_starts_empty(db, open_page):
    at = open_page("pages/import_data.py")
    upload(at, ("ward-a.json", export(3, 1, 1)), ("ward-b.json", export(2, 2, 100)))
    at.run()
    assert at.text_input[0].value == "ward-a"  # a new project named after the first file
    click_import(at)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == ["Imported **ward-a.json, ward-b.json** into **ward-a** (json)."]
    assert {m.label: m.value for m in at.metric}["Added"] == "5"
    (proj,) = list_projects(make_engine(db))
    assert (proj.name, proj.n_documents) == ("ward-a", 5)
    assert at.file_uploader[0].value in (None, [])  # the next import does not send these files again
    history = at.dataframe[-1].value
    assert sorted(history["file"].tolist()) == ["ward-a.json", "ward-b.json"]  # one import each


def test_an_export_with_no_report_is_a_warning_not_a_success(db, open_page):
    at = open_page("pages/import_data.py")
    upload(at, ("empty.json", b"[]"))
    at.text_input[0].input("empty").run()
    click_import(at)
    assert not at.exception, at.exception
    if at.error:  # refused outright is fine too: never a green banner
        assert not at.success
        return
    assert not at.success and any("nothing was stored" in w.value for w in at.warning)


def test_a_new_tab_imports_into_a_new_project_unless_one_is_chosen(db, open_page):
    from db.importer import import_tasks
    from tests.factories import tiny_tasks

    engine = make_engine(db)
    import_tasks(engine, "AAA first project", tiny_tasks(2))
    at = open_page("pages/import_data.py")
    assert at.radio[0].value == "New project"  # not silently the first project of the list
    upload(at, ("other-site.json", export(2, 3, 1)))
    at.run()
    click_import(at)
    assert not at.exception, at.exception
    names = {p.name: p.n_documents for p in list_projects(engine)}
    assert names == {"AAA first project": 2, "other-site": 2}
    # imported into (or picked in the sidebar, or ?project=NAME): this tab's target from now on
    assert at.radio[0].value == "Existing project" and at.selectbox[0].value == "other-site"
    assert at.query_params["project"] == "other-site"
