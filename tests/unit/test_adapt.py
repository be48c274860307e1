"""The adaptation job (issue 16) with the tiny random BERT: whole-word masking, the ``adapt`` job run by a Worker
(progress, held-out loss, a recorded base model version with the vocabulary it added), cancel, SIGKILL recovery of a
real worker process, and the base version chosen by name flowing into training (the model version records it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.adaptconfig import AdaptConfig
from core.types import Annotation, ParsedTask, ReportLensError, Span
from db.base_versions import get_base_version, list_base_versions, name_of_path
from db.engine import make_engine
from db.importer import import_tasks
from jobs import queue as jobs
from jobs.worker import Worker
from tests.factories import cfg
from training.mlm import MlmWindow, mask_window

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ["房性早搏", "短阵房性心动过速", "室性早搏"]


def zh_tasks(n: int = 16) -> list[ParsedTask]:
    """Chinese reports (characters the tiny vocabulary lacks) with EVENT and HR spans; every fourth unlabelled."""
    out = []
    for i in range(n):
        event = EVENTS[i % 3]
        text = f"窦性心律，心率{60 + i}次/分，{event} {i + 1} 次。"
        hr = text.index("心率") + 2
        spans = (Span(hr, hr + 2, "HR"), Span(text.index(event), text.index(event) + len(event), "EVENT"))
        anns = (Annotation(source="human", spans=spans, external_id=str(i + 1)),) if i % 4 else ()
        out.append(ParsedTask(text=text, task_id=i + 1, annotations=anns))
    return out


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str):
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("services.jobs.ensure_worker", lambda engine=None: False)  # jobs run in this process
    engine = make_engine(sqlite_url)
    import_tasks(engine, "zh", zh_tasks())
    return engine


def adapt_params(base_dir: str, **kw) -> dict:
    defaults = {"parent": base_dir, "vocab_min_count": 2, "mlm_steps": 6, "batch_size": 4, "max_length": 32,
                "eval_every": 2, "patience": 0, "seed": 1}
    return AdaptConfig(**(defaults | kw)).to_dict()


def run_in_process(engine, job_id: int) -> None:
    worker = Worker(engine, worker_id="in-process")
    claimed = jobs.claim_next(engine, worker.worker_id, ["adapt", "train"])
    assert claimed is not None and claimed.id == job_id
    worker.run_job(claimed)


def test_whole_word_masking_masks_every_piece_of_a_word_and_biases_to_entities() -> None:
    # words: 0 = [a, ##b, ##c] (an entity), 1..9 = single pieces
    window = MlmWindow((2, 10, 11, 12, *range(20, 29), 3), (-1, 0, 0, 0, *range(1, 10), -1),
                       (False, True, True, True, *[False] * 9, False))
    rng = np.random.default_rng(0)
    hits = entity_hits = 0
    for _ in range(400):
        ids, labels = mask_window(window, rng, 0.15, 0.0, 4, 100)
        masked = [i for i, lab in enumerate(labels) if lab != -100]
        assert masked and labels[0] == labels[-1] == -100  # never the specials, at least one word
        assert all(labels[i] == window.input_ids[i] for i in masked)
        assert {1, 2, 3} <= set(masked) or not {1, 2, 3} & set(masked)  # the whole word or none of it
        hits += 1 in masked
    rng = np.random.default_rng(0)
    for _ in range(400):
        _, labels = mask_window(window, rng, 0.15, 5.0, 4, 100)
        entity_hits += labels[1] != -100
    assert entity_hits > 2 * hits  # entity words are masked far more often with a boost


def test_windows_pack_short_reports_and_cut_long_ones_at_word_boundaries() -> None:
    from core.types import Document
    from tests.tiny import tiny_tokenizer
    from training.mlm import build_windows

    tok = tiny_tokenizer()
    docs = [Document(id=i, text=t, spans=(Span(0, 5, "R"),) if i == 0 else ()) for i, t in enumerate(
        ["sinus rhythm", "heart rate 72 bpm", " ".join(["bradycardia"] * 12)])]
    windows = build_windows(tok, docs, max_length=16)
    assert all(len(w.input_ids) <= 16 for w in windows)
    first = windows[0]  # the two short reports share a window, [SEP] between them
    assert tok.convert_ids_to_tokens(list(first.input_ids)) == [
        "[CLS]", "sinus", "rhythm", "[SEP]", "heart", "rate", "7", "##2", "bpm", "[SEP]"]
    assert first.entity[1] and not first.entity[2] and first.words[3] == -1 and first.words[6] == first.words[7]
    rest = [t for w in windows[1:] for t in tok.convert_ids_to_tokens(list(w.input_ids)) if t not in ("[CLS]", "[SEP]")]
    assert rest == ["brady", "##card", "##ia"] * 12  # the long report: every piece, no word split across windows
    assert all(tok.convert_ids_to_tokens([w.input_ids[1]])[0] == "brady" for w in windows[1:])
    unpacked = build_windows(tok, docs, max_length=16, pack=False)
    assert len(unpacked) == len(windows) + 1


def test_adapt_job_extends_the_vocabulary_pretrains_and_records_a_base_version(env, base_dir: str) -> None:
    from services.adapt import base_choices, queue_adaptation, unk_by_base
    from services.training import queue_training
    from training.handlers import handle_adapt  # noqa: F401  (registers the handler)

    engine = env
    job, _ = queue_adaptation(engine, "zh", AdaptConfig(**adapt_params(base_dir)))
    assert job.kind == "adapt" and job.params["name"] == "adapted-1"
    run_in_process(engine, job.id)
    info = jobs.get_job(engine, job.id)
    assert (info.status, info.error) == ("succeeded", None), info.log
    assert info.result["base_version"] == "adapted-1" and info.result["vocab_added"] >= 10
    assert info.result["unk_before"] > 0.3 and info.result["unk_after"] == 0.0
    assert info.progress.step == info.progress.max_steps == 6
    assert any("dev_mlm_loss" in p for p in info.history) and any("loss" in p for p in info.history)

    version = get_base_version(engine, "zh", "adapted-1")
    assert version.job_id == job.id and version.parent == base_dir and version.vocab_added >= 10
    assert "房" in version.vocab["sample"] and version.corpus["documents"] == 16 and version.corpus["labelled"] == 12
    assert version.mlm["steps"] == 6 and len(version.mlm["heldout_curve"]) >= 3 and version.mlm["loss_curve"]
    assert (version.model_dir / "adapt.json").is_file() and (version.model_dir / "vocab.txt").is_file()
    assert base_choices(engine, "zh") == ["bundled", "adapted-1"]

    # the Dataset page's numbers: the project's base version reads what the parent could not
    rows = {r.base: r for r in unk_by_base(engine, "zh")}
    assert rows["adapted-1"].unk_share == 0.0 and not rows["adapted-1"].suggest_adapt

    # the version, picked by name, is what training starts from and what the model version records
    train_job, _ = queue_training(engine, "zh", cfg("adapted-1", max_steps=2, batch_size=4))
    assert train_job.params["base_model"] == str(version.model_dir)
    run_in_process(engine, train_job.id)
    trained = jobs.get_job(engine, train_job.id)
    assert trained.status == "succeeded", trained.log
    from db.model_versions import active_model_version

    model_version = active_model_version(engine, "zh")
    assert model_version.base_model == str(version.model_dir)
    assert name_of_path(engine, "zh", model_version.base_model) == "adapted-1"
    from services.models import version_rows

    assert [r["base_model"] for r in version_rows(engine, "zh")] == ["adapted-1"]  # the Models page shows the name
    from transformers import AutoTokenizer

    assert len(AutoTokenizer.from_pretrained(model_version.model_dir)) == version.vocab["vocab_after"]

    # a training job that names the version in its params (a chain step queued before the version existed, as the
    # demo seed does) resolves the name when it runs
    named = jobs.enqueue(engine, 1, "train", cfg("adapted-1", max_steps=1, batch_size=4).to_dict())
    run_in_process(engine, named.id)
    assert jobs.get_job(engine, named.id).status == "succeeded"
    assert active_model_version(engine, "zh").base_model == str(version.model_dir)

    # a second adaptation from the first one, by name; a taken name is refused before queueing
    with pytest.raises(ReportLensError, match="already has a base model version"):
        queue_adaptation(engine, "zh", AdaptConfig(**adapt_params("adapted-1", name="adapted-1")))
    second, _ = queue_adaptation(engine, "zh", AdaptConfig(**adapt_params("adapted-1", mlm_steps=0)))
    run_in_process(engine, second.id)
    v2 = get_base_version(engine, "zh", "adapted-2")
    assert v2.parent == "adapted-1" and v2.vocab_added == 0 and v2.mlm["stopped"] == "no_mlm"
    # the rows the first adaptation added are still "new" to a fine-tuning from the second (trained, not frozen)
    from training.artifacts import added_vocab_rows

    first = added_vocab_rows(version.model_dir)
    assert len(first) == version.vocab_added and added_vocab_rows(v2.model_dir) == first


def start_worker(sqlite_url: str, tmp_path: Path, *args: str) -> subprocess.Popen:
    """A real ``python -m jobs.worker`` on the test database (output in tmp_path/worker.out)."""
    env = {**os.environ, "REPORTLENS_DATABASE_URL": sqlite_url, "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "worker.out", "a") as out:
        return subprocess.Popen([sys.executable, "-m", "jobs.worker", "--heartbeat", "0.3", "--poll", "0.1", *args],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_cancel_stops_the_adapt_job_within_seconds_and_keeps_nothing(env, base_dir: str, sqlite_url: str,
                                                                       tmp_path: Path) -> None:
    engine = env
    job = jobs.enqueue(engine, "zh", "adapt", adapt_params(base_dir, name="big", mlm_steps=100_000, eval_every=50,
                                                           max_minutes=3.0))
    proc = start_worker(sqlite_url, tmp_path, "--once")
    try:
        _wait(lambda: (jobs.get_job(engine, job.id).progress.step or 0) >= 2, timeout=240)
        asked = time.monotonic()
        jobs.request_cancel(engine, job.id)
        _wait(lambda: jobs.get_job(engine, job.id).status == "cancelled", timeout=30)
        assert time.monotonic() - asked < 10
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    info = jobs.get_job(engine, job.id)
    assert info.progress.step < 100_000 and "cancel requested" in info.log
    assert list_base_versions(engine, "zh") == []
    assert not (Path(os.environ["REPORTLENS_DATA_DIR"]) / "base_models" / str(info.project_id) / "big").exists()


def _wait(check, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_sigkill_during_adaptation_is_recovered_and_a_retry_succeeds(env, base_dir: str, sqlite_url: str,
                                                                     tmp_path: Path) -> None:
    from training.handlers import handle_adapt  # noqa: F401  (the retry runs in this process)

    engine = env
    job = jobs.enqueue(engine, "zh", "adapt", adapt_params(base_dir, name="killed", mlm_steps=100_000,
                                                           max_minutes=3.0))
    proc = start_worker(sqlite_url, tmp_path)
    try:
        _wait(lambda: (jobs.get_job(engine, job.id).progress.step or 0) >= 2, timeout=240)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert jobs.get_job(engine, job.id).status == "running"  # nobody has looked yet
    second = start_worker(sqlite_url, tmp_path, "--once", "--stale-after", "1")
    assert second.wait(timeout=240) == 0, (tmp_path / "worker.out").read_text()
    info = jobs.get_job(engine, job.id)
    assert info.status == "failed" and info.error.startswith("worker stopped responding")
    assert list_base_versions(engine, "zh") == []

    retry = jobs.retry_job(engine, job.id)  # a new job row with the same params
    assert retry.status == "queued" and retry.params["name"] == "killed"
    with engine.begin() as conn:  # a short run this time
        from sqlalchemy import update

        from db import models as m

        conn.execute(update(m.Job).where(m.Job.id == retry.id).values(params=adapt_params(base_dir, name="killed")))
    run_in_process(engine, retry.id)  # the killed attempt's half-written folder is replaced
    assert jobs.get_job(engine, retry.id).status == "succeeded"
    (version,) = list_base_versions(engine, "zh")
    assert version.name == "killed" and version.job_id == retry.id and version.mlm["steps"] == 6
    assert (version.model_dir / "adapt.json").is_file()


def test_a_cached_hub_id_is_a_parent_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``HF_HUB_OFFLINE=1``: a Hub id found in the local Hugging Face cache resolves to its snapshot folder; one
    that is not cached is a clear error (never a download)."""
    from training.encoding import resolve_model

    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("REPORTLENS_ALLOW_DOWNLOADS", raising=False)
    assert Path(resolve_model("org/tiny")) == snapshot
    with pytest.raises(ReportLensError, match="local Hugging Face cache"):
        resolve_model("org/not-cached")


def test_the_corpus_can_leave_documents_out(env) -> None:
    """``exclude`` keeps named documents (a benchmark's test split) out of the masked-LM corpus; the rest, labelled
    and unlabelled, stay."""
    from training.adapt import load_corpus

    everything = load_corpus(env, 1)
    assert len(everything) == 16 and sum(1 for d in everything if d.spans) == 12
    left_out = {d.id for d in everything if d.spans}
    kept = load_corpus(env, 1, exclude=sorted(left_out)[:5])
    assert len(kept) == 11 and not {d.id for d in kept} & set(sorted(left_out)[:5])
    assert {d.id for d in kept} | set(sorted(left_out)[:5]) == {d.id for d in everything}


def test_extra_text_is_plain_lines_or_a_label_studio_export(tmp_path: Path) -> None:
    """More unlabelled text for the masked LM: a ``.txt`` of one report per line, or a Label Studio export with no
    annotations (its task texts); a broken export or a missing file is a clear error naming the file."""
    import json

    from training.adapt import read_extra_text

    plain = tmp_path / "more.txt"
    plain.write_text("窦性心律，心率72次/分。\n\n  房性早搏 3 次。  \n", encoding="utf-8")
    assert read_extra_text(str(plain)) == ["窦性心律，心率72次/分。", "房性早搏 3 次。"]
    export = tmp_path / "unlabelled.json"
    export.write_text(json.dumps([{"id": 1, "data": {"text": "室性早搏 12 次。"}},
                                  {"id": 2, "data": {"text": "Sinus rhythm, rate 64 bpm."}}], ensure_ascii=False),
                      encoding="utf-8")
    assert read_extra_text(str(export)) == ["室性早搏 12 次。", "Sinus rhythm, rate 64 bpm."]
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": 1, "data": {"text": "x"}', encoding="utf-8")
    with pytest.raises(ReportLensError, match="broken.json"):
        read_extra_text(str(broken))
    with pytest.raises(ReportLensError, match="does not exist"):
        read_extra_text(str(tmp_path / "missing.txt"))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ReportLensError, match="UTF-8"):
        read_extra_text(str(latin))


def test_lora_training_on_an_adapted_base_trains_the_added_rows_only(tmp_path: Path, base_dir: str,
                                                                     sqlite_url: str) -> None:
    """``train_new_vocab`` (default on): LoRA fine-tuning from a base whose vocabulary was extended also trains
    the added embedding rows (peft trainable tokens) and leaves the old ones exactly as they were; merged and
    unmerged reloads give the same outputs. Off, the added rows keep their initial values."""
    import torch
    from safetensors.torch import load_file

    from training.adapt import run_adaptation
    from training.artifacts import added_vocab_rows
    from training.inference import clear_model_cache, load_model, load_uncached
    from training.trainer import run_training

    engine = make_engine(sqlite_url)
    import_tasks(engine, "zh", zh_tasks())
    config = AdaptConfig(**adapt_params(base_dir, mlm_steps=0))
    adapted = run_adaptation(engine, 1, config, base_dir, tmp_path / "base")
    rows = added_vocab_rows(adapted.model_dir)
    assert len(rows) == adapted.vocab["added"] >= 10 and rows.start == adapted.vocab["vocab_before"]
    assert added_vocab_rows(base_dir) == range(0)
    base_emb = load_file(adapted.model_dir / "model.safetensors")["bert.embeddings.word_embeddings.weight"]

    trained = {}
    for on in (True, False):
        out = tmp_path / f"model-{on}"
        run_training(engine, 1, cfg(str(adapted.model_dir), train_new_vocab=on, max_steps=3, learning_rate=5e-2,
                                    dev_ratio=0.0, test_ratio=0.0), out)
        clear_model_cache()
        loaded = load_model(out)  # merged
        emb = loaded.model.get_input_embeddings().weight.detach()
        assert torch.equal(emb[:rows.start], base_emb[:rows.start])  # the old rows never move
        trained[on] = emb[rows.start:rows.stop].clone()
        adapter = load_uncached(out).model  # the adapter itself, unmerged: the same outputs on the new characters
        ids = loaded.tokenizer("房性早搏 3 次", return_tensors="pt")
        assert ids["input_ids"].max() >= rows.start
        with torch.no_grad():
            assert torch.allclose(loaded.model(**ids).logits, adapter(**ids).logits, atol=1e-5)
    assert not torch.allclose(trained[True], base_emb[rows.start:rows.stop])
    assert torch.equal(trained[False], base_emb[rows.start:rows.stop])


def test_document_classification_on_an_adapted_base_trains_the_added_rows_too(tmp_path: Path, env,
                                                                              base_dir: str) -> None:
    from training.adapt import run_adaptation
    from training.artifacts import added_vocab_rows
    from training.tasks.classification import build_classifier

    adapted = run_adaptation(env, 1, AdaptConfig(**adapt_params(base_dir, mlm_steps=0)), base_dir, tmp_path / "b")
    rows = added_vocab_rows(adapted.model_dir)
    trainable = {n: p.shape for n, p in build_classifier(
        cfg(str(adapted.model_dir), task="classification"), ["normal", "abnormal"], False).named_parameters()
        if p.requires_grad}
    (delta,) = [shape for name, shape in trainable.items() if "trainable_tokens_delta" in name]
    assert delta[0] == len(rows) >= 10
    off = build_classifier(cfg(str(adapted.model_dir), task="classification", train_new_vocab=False),
                           ["normal", "abnormal"], False)
    assert not any("trainable_tokens" in n for n, p in off.named_parameters() if p.requires_grad)


def test_a_bad_extra_text_file_is_refused_when_queueing_not_in_the_worker(env, base_dir: str, tmp_path: Path) -> None:
    from services.adapt import queue_adaptation

    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    for path, message in ((empty, "holds no report text"), (broken, "broken.json"),
                          (tmp_path / "missing.txt", "does not exist")):
        with pytest.raises(ReportLensError, match=message):
            queue_adaptation(env, "zh", AdaptConfig(**adapt_params(base_dir, extra_text=str(path))))
    assert jobs.active_jobs(env) == []  # nothing was queued
