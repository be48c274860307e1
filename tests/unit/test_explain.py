"""Explanations: rollout / head-mean / entity-bar math by hand, attention extraction from a tiny trained model
(shapes, rows summing to one, windows of a long report), bertviz HTML (local scripts only, report text kept as data),
figure labels escaped, the service's attention view."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from core.explain import (
    AttentionWindow,
    entity_bars,
    head_mean,
    rollout,
    token_indices,
    top_tokens,
    view_ranges,
    window_around,
    window_of_span,
    word_starts,
    word_windows,
)
from core.types import ReportLensError


def _rows(n_layers: int, n_heads: int, t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((n_layers, n_heads, t, t))
    return (x / x.sum(-1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------- math


def test_head_mean_and_rollout_by_hand():
    a1 = np.array([[[0.9, 0.1], [0.4, 0.6]], [[0.5, 0.5], [0.2, 0.8]]])  # layer 1, two heads
    a2 = np.array([[[0.3, 0.7], [1.0, 0.0]], [[0.1, 0.9], [0.0, 1.0]]])
    att = np.stack([a1, a2]).astype(np.float32)
    mean = head_mean(att)
    np.testing.assert_allclose(mean[0], [[0.7, 0.3], [0.3, 0.7]], atol=1e-6)
    np.testing.assert_allclose(mean[1], [[0.2, 0.8], [0.5, 0.5]], atol=1e-6)
    # Abnar & Zuidema: 0.5 A + 0.5 I (rows already sum to one), multiplied bottom-up
    r1 = 0.5 * mean[0] + 0.5 * np.eye(2)
    r2 = (0.5 * mean[1] + 0.5 * np.eye(2)) @ r1
    out = rollout(att)
    np.testing.assert_allclose(out[0], r1, atol=1e-6)
    np.testing.assert_allclose(out[1], r2, atol=1e-6)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-6)
    # no residual term: the plain product of head means
    np.testing.assert_allclose(rollout(att, residual=0.0)[1], mean[1] @ mean[0], atol=1e-6)
    # only the residual: identity all the way
    np.testing.assert_allclose(rollout(att, residual=1.0)[1], np.eye(2), atol=1e-6)
    with pytest.raises(ReportLensError, match="residual"):
        rollout(att, residual=1.5)


def test_rollout_rows_sum_to_one_on_random_stacks():
    att = _rows(4, 3, 9, seed=3)
    out = rollout(att)
    assert out.shape == (4, 9, 9)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    assert (out >= 0).all()


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ReportLensError, match="eager"):
        head_mean(np.zeros((2, 3, 4)))
    with pytest.raises(ReportLensError, match="NaN"):
        head_mean(np.full((1, 1, 2, 2), np.nan))
    with pytest.raises(ReportLensError, match="tokens"):
        AttentionWindow(None, 0, 1, 0, 1, ("[CLS]", "x"), ((0, 0), (0, 1)), _rows(1, 1, 3))


def test_entity_bars_to_and_from():
    m = np.array([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3], [0.0, 0.2, 0.8]])
    bars = entity_bars(m, [1, 2])
    np.testing.assert_allclose(bars.to_entity, [0.5, 0.9, 1.0])  # share of each row that lands on tokens 1-2
    np.testing.assert_allclose(bars.from_entity, [0.05, 0.4, 0.55])  # mean of rows 1 and 2
    assert bars.from_entity.sum() == pytest.approx(1.0)
    with pytest.raises(ReportLensError, match="covers no token"):
        entity_bars(m, [])
    with pytest.raises(ReportLensError, match="outside"):
        entity_bars(m, [5])


def test_token_selection_for_long_reports():
    m = np.full((6, 6), 0.02)
    m[:, 4] = 0.5  # everyone attends to token 4
    m[:, 2] = 0.3
    assert top_tokens(m, 2) == [2, 4]
    assert top_tokens(m, 2, keep=[5]) == [4, 5]  # the entity stays, then the most attended
    assert top_tokens(m, 3, keep=[0, 1, 5]) == [0, 1, 5]  # never fewer than the kept ones
    assert top_tokens(m, 2, skip_special=[4]) == [0, 2]  # 4 ranks last; ties go to the earlier position
    assert top_tokens(m, 50) == list(range(6))
    assert view_ranges(85, 40) == [(0, 40), (40, 80), (80, 85)]
    offsets = [(0, 0), (0, 5), (6, 11), (11, 12), (0, 0)]
    assert token_indices(offsets, 6, 12) == [2, 3] and token_indices(offsets, 0, 3) == [1]
    assert window_of_span([(0, 10), (6, 16)], [8, 9]) == 1  # more context in the second window
    assert window_of_span([(0, 10), (6, 16)], [2]) == 0 and window_of_span([(0, 10)], []) is None


def test_bertviz_window_is_contiguous_and_never_cuts_a_word():
    """A demo-like ECG report through the tiny word-piece tokenizer: "418" is three pieces (4 ##1 ##8). The top-k
    pick bertviz used kept "##8" without "4" ("ms , ##8 ms"); a word window keeps every token between its ends."""
    from tests.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    text = ("Sinus rhythm, heart rate 72 bpm. PR interval 160 ms, QRS 98 ms, QTc 418 ms. Normal axis. "
            "No ST elevation. There is a pleural effusion in the left lower lobe. Normal ECG. ") * 2
    enc = tok(text, return_offsets_mapping=True)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    q = text.rindex("418")
    ent = token_indices(offsets, q, q + 3)
    assert [tokens[i] for i in ent] == ["4", "##1", "##8"]
    starts = set(word_starts(offsets))
    assert ent[0] in starts and not {ent[1], ent[2]} & starts and 0 in starts and len(tokens) - 1 in starts
    windows = word_windows(offsets, 48)
    assert len(tokens) > 48 and len(windows) > 1
    assert windows[0][0] == 0 and windows[-1][1] == len(tokens)
    for a, b in windows:
        assert 0 < b - a <= 48 and a in starts and (b == len(tokens) or b in starts)  # whole words at both ends
    a, b = windows[window_around(windows, ent)]
    assert a <= ent[0] and ent[-1] < b and min(ent[0] - a, b - 1 - ent[-1]) >= 15  # the entity near the middle
    shown = tokens[a:b]
    assert " ".join(shown).replace(" ##", "").count("qtc 418 ms") == 1
    assert word_windows(offsets, 500) == [(0, len(tokens))] and window_around(windows, []) == 0
    # one word longer than the window is the only thing ever cut
    assert word_windows([(0, 0), (0, 1), (1, 2), (2, 3), (0, 0)], 2) == [(0, 1), (1, 3), (3, 5)]


# ---------------------------------------------------------------- a tiny trained model


@pytest.fixture(scope="module")
def tiny_version(tmp_path_factory):
    """A tiny random BERT fine-tuned for a few steps on tiny reports, stored as model version v1."""
    from db.engine import dispose_engine
    from db.model_versions import record_model_version
    from tests.factories import tiny_tasks, train_tiny

    engine, url, result = train_tiny(tmp_path_factory.mktemp("explain"), tiny_tasks(), max_steps=3, max_length=16,
                                     stride=4)
    version = record_model_version(engine, 1, None, result)
    yield engine, version
    dispose_engine(url)


LONG = ("sinus rhythm , heart rate 72 bpm . there is a pleural effusion in the left lower lobe . "
        "no st elevation . qt interval 400 ms . atrial fibrillation with right axis deviation .")


def test_attention_of_every_window_of_a_long_report(tiny_version):
    from training.attention import document_attention, document_windows, load_attention_model

    _engine, version = tiny_version
    loaded = load_attention_model(version.model_dir)
    layout = document_windows(loaded, LONG)
    assert len(layout) > 1  # max_length 16: the report needs several windows
    maps = document_attention(loaded, LONG, doc_id=7)
    assert [w.index for w in maps] == list(range(len(layout)))
    covered = set()
    for w in maps:
        t = w.n_tokens
        assert w.attentions.shape == (2, 4, t, t) and w.attentions.dtype == np.float32
        np.testing.assert_allclose(w.attentions.sum(-1), 1.0, atol=1e-5)
        assert w.tokens[0] == "[CLS]" and w.tokens[-1] == "[SEP]" and w.n_windows == len(layout)
        assert w.offsets[0] == (0, 0) and w.offsets[-1] == (0, 0) and w.doc_id == 7
        for tok, (a, b) in zip(w.tokens[1:-1], w.offsets[1:-1], strict=True):
            assert LONG[a:b].lower() == tok.removeprefix("##")
        covered.update(range(w.token_start, w.token_end))
        np.testing.assert_allclose(rollout(w.attentions).sum(-1), 1.0, atol=1e-5)
    assert covered == set(range(max(w.token_end for w in maps)))
    with pytest.raises(ReportLensError, match="does not exist"):
        document_attention(loaded, LONG, windows=[len(layout)])


def test_service_attention_view_lists_predicted_and_annotated_entities(tiny_version):
    from services.explain import attention_view, bar_rows, matrix_rows, to_csv

    engine, version = tiny_version
    view = attention_view(engine, version, 1, 0)
    assert view.n_windows >= 1 and view.window.attentions.shape[:2] == (2, 4)
    human = [e for e in view.entities if e.source == "human"]
    assert {e.label for e in human} >= {"RHYTHM", "HR"}
    assert len(view.entity_windows) == len(view.entities)
    i, ent = next((i, e) for i, e in view.entities_in_window() if e.source == "human")
    pos = view.entity_positions(ent)
    assert pos and all(view.window.offsets[p][0] < ent.end for p in pos)
    bars = entity_bars(view.window.attentions[1, 0], pos)
    csv_text = to_csv(bar_rows(view.window.tokens, range(view.window.n_tokens), bars.to_entity, bars.from_entity,
                               bars.entity_tokens), ("position", "token", "in_entity", "attends_to_entity",
                                                     "attended_from_entity"))
    assert csv_text.splitlines()[0] == "position,token,in_entity,attends_to_entity,attended_from_entity"
    assert len(csv_text.splitlines()) == view.window.n_tokens + 1
    rows = matrix_rows(view.window.attentions[0, 0], view.window.tokens, [0, 1])
    assert len(rows) == 4 and rows[0]["from_token"] == "[CLS]"
    with pytest.raises(ReportLensError, match="does not exist"):
        attention_view(engine, version, 10_000, 0)


def test_csv_cells_that_look_like_formulas_are_defused():
    from services.explain import to_csv

    text = to_csv([{"token": "=HYPERLINK(\"x\")", "n": 1}, {"token": "-", "n": 2}], ("token", "n"))
    assert "'=HYPERLINK" in text and "\n'-,2" in text.replace("\r", "")


# ---------------------------------------------------------------- bertviz HTML and figures


EVIL = "</script><img src=x onerror=alert(1)>"


@pytest.mark.parametrize("view", ["head", "model"])
def test_bertviz_html_loads_only_local_scripts_and_keeps_tokens_as_data(view):
    from ui import bertviz

    tokens = ["[CLS]", EVIL, "a&b", "\u2028", "[SEP]"]
    att = _rows(2, 3, len(tokens))
    url = bertviz.static_url("")
    html = (bertviz.head_view_html(tokens, att, url, layer=1) if view == "head"
            else bertviz.model_view_html(tokens, att, url))
    assert "cdnjs" not in html and "cloudflare" not in html
    srcs = re.findall(r"""(?:src=|d3: |jquery: )["']([^"']+)""", html)
    assert sorted(srcs) == ["/app/static/vendor/node_modules/d3/dist/d3.min",
                            "/app/static/vendor/node_modules/jquery/dist/jquery.min",
                            "/app/static/vendor/node_modules/requirejs/require.js"], srcs
    assert html.count("</script>") == 2 and "<img" not in html  # the token did not close the script
    data = re.search(r"const params = (\{.*?\}); // HACK", html, re.S).group(1)
    params = json.loads(data)
    assert params["attention"][0]["left_text"][1] == EVIL
    embedded = att[1:2] if view == "head" else att  # the head view embeds only the page's layer
    assert np.allclose(np.array(params["attention"][0]["attn"]), embedded, atol=5e-4)
    assert len(data) < 12 * embedded.size + 2000  # about 7 characters a weight, not float32's 20
    assert bertviz.static_url("/reports/") == "/reports/app/static/vendor/node_modules"
    with pytest.raises(ReportLensError, match="too many"):
        bertviz.head_view_html(["t"] * 70, _rows(1, 1, 70), url)


def test_bertviz_views_follow_the_pages_layer_and_head():
    """The page's Layer and Head drive the views: the head view embeds only that layer and draws no Layer select of
    its own (the layer was asked twice), and shows the chosen head; the model view shows that head's column."""
    from ui import bertviz

    tokens = ["[CLS]", "a", "b", "[SEP]"]
    att = _rows(3, 4, len(tokens))

    def params(html: str) -> dict:
        return json.loads(re.search(r"const params = (\{.*?\}); // HACK", html, re.S).group(1))

    head = bertviz.head_view_html(tokens, att, layer=2, heads=[1])
    p = params(head)
    assert 'id="layer"' not in head and p["include_layers"] == [2] and p["layer"] == 2 and p["heads"] == [1]
    assert np.allclose(np.array(p["attention"][0]["attn"]), att[2:3], atol=5e-4)  # one layer, every head
    assert params(bertviz.head_view_html(tokens, att, layer=0))["heads"] is None  # all heads
    assert 'id="layer"' in bertviz.head_view_html(tokens, att)  # no layer chosen: bertviz's own select
    model = params(bertviz.model_view_html(tokens, att, heads=[3]))
    assert model["include_heads"] == [3] and model["include_layers"] == [0, 1, 2] and model["total_heads"] == 4
    assert np.allclose(np.array(model["attention"][0]["attn"]), att[:, [3]], atol=5e-4)
    with pytest.raises(ReportLensError, match="Heads"):
        bertviz.model_view_html(tokens, att, heads=[4])
    with pytest.raises(ReportLensError, match="Layer 3"):
        bertviz.head_view_html(tokens, att, layer=3)


def test_bertviz_scripts_come_from_the_installed_packages_at_the_locked_versions():
    """The view scripts are bertviz's own (found without importing bertviz, whose __init__ imports IPython); the
    libraries they load are the files ``npm ci`` put in static/vendor, at the versions package-lock.json pins."""
    import subprocess
    import sys
    from importlib.metadata import version
    from pathlib import Path

    from ui import bertviz

    root = Path(__file__).resolve().parents[2]
    code = "import sys; from ui import bertviz; print(bertviz.bertviz_dir()); assert 'bertviz' not in sys.modules"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == bertviz.bertviz_dir()
    assert (bertviz.bertviz_dir() / "head_view.js").read_text().startswith("/**")
    assert f"bertviz=={version('bertviz')}" in (root / "requirements.txt").read_text()  # the pinned one

    bertviz.check_scripts()  # make setup installed them
    lock = json.loads((root / "package-lock.json").read_text())["packages"]
    pinned = json.loads((root / "package.json").read_text())["dependencies"]
    for package, rel in bertviz.SCRIPTS.items():
        assert lock[f"node_modules/{package}"]["version"] == pinned[package]  # exact versions, no ranges
        installed = json.loads((bertviz.VENDOR_DIR / package / "package.json").read_text())["version"]
        assert installed == pinned[package], (package, installed)
        assert (bertviz.VENDOR_DIR / rel).stat().st_size > 10_000
    assert "v" + pinned["d3"] in (bertviz.VENDOR_DIR / bertviz.SCRIPTS["d3"]).read_text()[:200]


def test_missing_javascript_libraries_say_how_to_install_them(tmp_path):
    from ui import bertviz

    with pytest.raises(ReportLensError, match=r"require\.js, d3 and jQuery.*make setup"):
        bertviz.check_scripts(tmp_path)
    (tmp_path / "requirejs").mkdir()
    (tmp_path / "requirejs" / "require.js").write_text("//")
    with pytest.raises(ReportLensError, match="d3/dist/d3.min.js, jquery/dist/jquery.min.js are missing"):
        bertviz.check_scripts(tmp_path)


def test_no_third_party_script_is_committed():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    try:
        files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    # the only JavaScript in the repository is ReportLens' own (the Review span view); libraries come from npm
    own = {"ui/spanview/index.js"}
    assert [f for f in files.splitlines() if f.endswith(".js") and f not in own] == []
    ignored = subprocess.run(["git", "check-ignore", "static/vendor/node_modules/d3/dist/d3.min.js"], cwd=root,
                             capture_output=True, text=True)
    assert ignored.returncode == 0, "static/vendor/ must be git-ignored"


def test_figure_labels_are_escaped():
    from ui.explain_figs import entity_bar_figure, heatmap, importance_bars

    tokens = ["[CLS]", "<b>bold</b>", "[SEP]"]
    fig = heatmap(_rows(1, 1, 3)[0, 0], tokens, [0, 1, 2], "t <i>x</i>")
    assert "1 &lt;b&gt;bold&lt;/b&gt;" in list(fig.data[0].x) and "<i>" not in fig.layout.title.text
    bars = entity_bar_figure(tokens, [0, 1, 2], np.ones(3), np.ones(3) / 3, [1], "e")
    assert all("<b>" not in x for x in bars.data[0].x)
    imp = importance_bars(["c:<a "], [0.5], None, "imp", "x")
    assert list(imp.data[0].y) == ["c:&lt;a "]
