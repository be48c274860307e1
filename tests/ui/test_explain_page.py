"""AppTest of the Explain page on a demo-like setup: the synthetic demo project and a tiny random BERT version trained
on it. Attention heatmaps and rollout (showing the chosen report's tokens), entity bars, the bertviz views (local
scripts only), the report search, feature importances with the BERT side-by-side (the values the service computes),
and the empty states."""

from __future__ import annotations

import html
import json
import re

import pytest

from core.explain import word_starts
from db.engine import make_engine
from tests.factories import seed_with_version

pytestmark = pytest.mark.ui
PAGE = "pages/explain.py"


def test_empty_database_says_what_to_do(open_page):
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("Import" in i.value for i in at.info)


def test_project_without_model_points_to_train_and_still_fits_features(db, open_page):
    from services.imports import seed_demo

    seed_demo(make_engine(db), n=30)
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("Train" in i.value for i in at.info)
    at.radio(key="explain_view").set_value("Feature importances").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert set(table["model"]) == {"random forest", "decision tree (depth 3)"}
    assert any("no trained model" in w.value for w in at.warning)


def _bertviz_params(srcdoc: str) -> dict:
    return json.loads(re.search(r"const params = (\{.*?\}); // HACK", srcdoc, re.S).group(1))


def _axis(chart) -> list[str]:
    """The token labels (``"i token"``) along a heatmap's x axis."""
    return json.loads(chart.proto.spec)["data"][0]["x"]


def test_attention_bertviz_and_features_with_a_trained_version(db, tmp_path, monkeypatch, open_page):
    from db.repository import get_document
    from services.explain import feature_report
    from tests.tiny import tiny_tokenizer

    seed_with_version(db, tmp_path)
    engine = make_engine(db)
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert at.selectbox(key="explain_version").value.name == "v1"
    picker = at.selectbox(key="explain_doc")
    assert picker.label == "Report (30 found, first 200 listed)" and len(picker.options) == 30
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the chosen head (mean of heads) and the rollout
    assert any("Rows attend to columns" in c.value for c in at.caption)

    at.selectbox(key="explain_head").set_value(1).run()
    at.radio(key="explain_mode").set_value("consecutive slice").run()
    assert not at.exception, at.exception
    # the heatmaps show the chosen report's first window, token by token: [CLS], its word pieces, [SEP]
    text = get_document(engine, at.selectbox(key="explain_doc").value.id).text
    head, roll = at.get("plotly_chart")
    shown = [label.split(" ", 1)[1] for label in _axis(head)]
    assert len(shown) > 3 and shown == ["[CLS]", *tiny_tokenizer().tokenize(text)[:len(shown) - 2], "[SEP]"], shown
    assert _axis(roll) == _axis(head)
    assert json.loads(head.proto.spec)["layout"]["title"]["text"] == "Attention, layer 1, head 1"
    options = at.selectbox(key="explain_entity").options
    assert len(options) > 1 and options[0] == "(none)", options  # the demo report has annotated entities
    at.selectbox(key="explain_entity").select_index(1).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3  # + the entity bars
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Attention shown (CSV)", "Entity bars (CSV)"]
    at.toggle(key="explain_grid").set_value(True).run()
    assert not at.exception and len(at.get("plotly_chart")) == 4

    at.radio(key="explain_view").set_value("bertviz").run()
    assert not at.exception, at.exception
    (frame,) = at.get("iframe")
    srcdoc = frame.proto.srcdoc
    assert '<script src="/app/static/vendor/node_modules/requirejs/require.js">' in srcdoc and "cdnjs" not in srcdoc
    # the page's Layer (1, the last) and Head (1) drive the head view; bertviz asks for no layer of its own
    params = _bertviz_params(srcdoc)
    assert params["include_layers"] == [1] and params["heads"] == [1] and 'id="layer"' not in srcdoc
    assert not at.get("select_slider")  # the window (max_length 32) fits: all of it, no start slider

    from services.explain import attention_view, pick_version
    from ui import bertviz

    doc_id = at.selectbox(key="explain_doc").value.id
    av = attention_view(engine, pick_version(engine, 1), doc_id, 0)
    entity = av.entities[at.selectbox(key="explain_entity").value]
    ent_pos = av.entity_positions(entity)
    starts = set(word_starts(av.window.offsets))
    with monkeypatch.context() as m:  # a window longer than bertviz shows: consecutive whole words, never a top-k
        m.setattr(bertviz, "MAX_TOKENS", 12)
        at.run()
        assert not at.exception, at.exception
        (slider,) = at.get("select_slider")
        for step in range(2):
            shown = _bertviz_params(at.get("iframe")[0].proto.srcdoc)["attention"][0]["left_text"]
            n = len(shown)
            a = next(i for i in range(av.window.n_tokens - n + 1)
                     if bertviz._prettify(av.window.tokens[i:i + n]) == shown)
            assert 0 < n <= 12 and a in starts and (a + n == av.window.n_tokens or a + n in starts), (a, n)
            if step == 0:  # first the tokens around the chosen entity
                assert all(a <= p < a + n for p in ent_pos), (a, n, ent_pos)
                assert any(f"{n} consecutive ones ({a}–{a + n - 1}, whole words" in c.value for c in at.caption)
                first = a
                other = 0 if slider.value != 0 else 1
                at.get("select_slider")[0].set_value(other).run()
                assert not at.exception, at.exception
        assert a != first  # the slider moved the window
    at.radio(key="explain_bertviz").set_value("model view").run()
    assert not at.exception, at.exception
    assert '"display_mode":"light"' in at.get("iframe")[0].proto.srcdoc
    from ui import bertviz

    with monkeypatch.context() as m:  # as before `make setup` ran npm ci: a message, not a traceback or a blank frame
        m.setattr(bertviz, "VENDOR_DIR", tmp_path / "no-vendor")
        at.run()
    assert not at.exception and not at.get("iframe")
    assert any("make setup" in e.value for e in at.error), [e.value for e in at.error]

    at.text_input(key="explain_search").input("no report says this").run()
    assert not at.exception and any("No report matches" in i.value for i in at.info), [i.value for i in at.info]
    at.text_input(key="explain_search").input("EFFUSION").run()  # any case
    assert not at.exception, at.exception
    found = at.selectbox(key="explain_doc").options
    assert found and all("effusion" in get_document(engine, int(o.split(" ")[0][1:])).text.lower() for o in found)
    assert at.selectbox(key="explain_doc").label.startswith(f"Report ({len(found)} found")

    at.radio(key="explain_view").set_value("Feature importances").run()
    assert not at.exception, at.exception
    assert at.radio(key="explain_target").value == "presence"  # the demo has entities, no document labels
    table = at.dataframe[0].value
    assert {"random forest", "decision tree (depth 3)", "BERT v1"} <= set(table["model"])
    expected = feature_report(engine, 1, "presence", at.selectbox(key="explain_cmp_version").value.id)
    forest = table[table["model"] == "random forest"]
    assert list(forest["label"]) == [r["label"] for r in expected.comparison if r["model"] == "random forest"]
    assert list(forest["f1"]) == pytest.approx([r["f1"] for r in expected.comparison if r["model"] == "random forest"])
    assert {"RHYTHM", "(micro)", "(macro)"} <= set(forest["label"])
    split = expected.result
    assert any(c.value.startswith(f"Split: {expected.split.source}; {split.n_train} training and {split.n_eval} ")
               for c in at.caption), [c.value for c in at.caption]
    impurity = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]
    assert impurity["y"][::-1] == [html.escape(i.feature) for i in split.top(20)]  # top feature first, drawn at the top
    charts = at.get("plotly_chart")
    if split.permutation_note:  # every shuffle left the F1 as it was: the page says why, no flat chart
        assert split.permutation_note in [i.value for i in at.info]
    # F1 side by side, impurity, per-feature permutation unless the note says why not, the feature groups unless
    # shuffling them changed nothing either (then an info says so)
    groups_moved = any(g.permutation_mean or g.permutation_std for g in split.groups[:20])
    assert split.groups and len(charts) == 2 + (not split.permutation_note) + groups_moved
    if groups_moved:
        groups = json.loads(charts[-1].proto.spec)["data"][0]
        assert groups["y"][::-1] == [html.escape(g.name) for g in split.groups[:20]]
        assert any("shuffled together" in c.value for c in at.caption)
    else:
        assert any("shuffled together" in i.value and "changed no prediction either" in i.value for i in at.info)
    assert not any(f.startswith("c:") or "findings" in f or "impression" in f for f in impurity["y"])
    assert "|---" in at.code[0].value and "class:" not in at.code[0].value and " present " in at.code[0].value
    assert [b.label for b in at.get("download_button")] == ["Importances (CSV)", "Feature groups (CSV)",
                                                            "Metrics (CSV)"]
