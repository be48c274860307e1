"""services.batching.MicroBatcher: concurrent predictions on one model share forwards and give each caller its own,
the same as unbatched calls (a tiny trained model, real threads)."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from core.types import ReportLensError
from services.batching import MicroBatcher, batched
from tests.factories import report
from training.inference import clear_model_cache, load_model


@pytest.fixture(scope="module")
def loaded(trained):
    clear_model_cache()
    return load_model(trained.model_dir)


class Held:
    """The loaded model, whose first forward waits until ``release`` is set: the other callers queue meanwhile."""

    def __init__(self, loaded) -> None:
        self.loaded, self.release, self.started, self.sizes = loaded, threading.Event(), threading.Event(), []

    def predict_detailed(self, docs, batch_size=32):
        self.sizes.append(len(docs))
        if len(self.sizes) == 1:
            self.started.set()
            assert self.release.wait(10)
        return self.loaded.predict_detailed(docs, batch_size)


def texts(n: int, seed: int = 0) -> list[str]:
    return [report(random.Random(seed + i))[0] for i in range(n)]


def test_concurrent_calls_share_a_forward_and_get_their_own_predictions(loaded):
    held = Held(loaded)
    batcher = MicroBatcher(held)
    calls = [[(f"a{i}", t)] for i, t in enumerate(texts(5))] + [[("b0", texts(1, 50)[0]), ("b1", texts(1, 60)[0])]]
    results: dict[int, list] = {}

    def run(i: int) -> None:
        results[i] = batcher.predict_detailed(calls[i])

    first = threading.Thread(target=run, args=(0,))
    first.start()
    assert held.started.wait(10)
    others = [threading.Thread(target=run, args=(i,)) for i in range(1, len(calls))]
    for t in others:
        t.start()
    while len(batcher._queue) < len(others):  # every other call is queued behind the held forward
        threading.Event().wait(0.01)
    held.release.set()
    for t in [first, *others]:
        t.join(20)
    assert held.sizes == [1, 6]  # the lone first call, then the five queued calls (six documents) in one forward
    assert batcher.batches == 2 and batcher.calls == len(calls)
    for i, docs in enumerate(calls):
        alone = loaded.predict_detailed(docs)
        got = results[i]
        assert [p.doc_id for p in got] == [d for d, _ in docs]
        for a, b in zip(alone, got, strict=True):
            assert [s for s, _ in a.spans] == [s for s, _ in b.spans]
            np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)


def test_an_error_reaches_every_caller_of_the_batch_and_the_next_call_runs(loaded):
    class Failing:
        def __init__(self) -> None:
            self.fail = True

        def predict_detailed(self, docs, batch_size=32):
            if self.fail:
                raise ReportLensError("the model folder is damaged")
            return loaded.predict_detailed(docs, batch_size)

    failing = Failing()
    batcher = MicroBatcher(failing)
    with pytest.raises(ReportLensError, match="damaged"):
        batcher.predict_detailed([(1, "sinus rhythm")])
    failing.fail = False
    [pred] = batcher.predict_detailed([(1, "sinus rhythm")])
    assert pred.doc_id == 1
    assert batcher.predict_detailed([]) == []


def test_a_call_larger_than_max_docs_is_not_split_and_attributes_pass_through(loaded):
    batcher = MicroBatcher(loaded, max_docs=2)
    docs = [(i, t) for i, t in enumerate(texts(4))]
    assert [p.doc_id for p in batcher.predict_detailed(docs)] == [0, 1, 2, 3]
    assert batcher.schema == loaded.schema and batcher.task == "ner"


def test_batched_keeps_one_batcher_per_model(loaded):
    assert batched(loaded) is batched(loaded)
    assert batched(loaded).loaded is loaded
