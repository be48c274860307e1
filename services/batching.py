"""Concurrent predictions on one model share forward passes: :class:`MicroBatcher` (opt-in:
``services.models.enable_micro_batching``; measured not to pay on 2 cores, see there).

Four clients posting one short report each used to run four forward passes at once, each with torch's threads, on
2 cores: oversubscribed, p95 latency was 2-3x the service time (bench/README.md "Serving speed"). Here the calls
queue, and one of the callers at a time (the *leader*) runs every queued call's documents as ONE
``predict_detailed`` (the windowed, batched inference of :mod:`training.runtime`), then hands each caller its own
predictions back. Nothing waits on a timer: a lone request is run at once; requests that arrive while a forward is
running are batched into the next one ("natural batching"), so batches grow with the load and vanish without it.
Each document is predicted by itself as before (windows of different documents never mix in a row; padding is
masked), so a batched call gives the same entities as an unbatched one.

The in-flight gate of :mod:`api.guard` still bounds how many requests wait here (503 beyond it).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from services.auth import open_to_all


class _Call:
    __slots__ = ("docs", "error", "finished", "result")

    def __init__(self, docs: list[tuple[Any, str]]) -> None:
        self.docs = docs
        self.result: list[Any] | None = None
        self.error: BaseException | None = None
        self.finished = False


class MicroBatcher:
    """``loaded`` (a :class:`training.inference.LoadedModel` or an ONNX model: anything with ``predict_detailed``)
    whose concurrent ``predict_detailed`` calls are run together; every other attribute is ``loaded``'s.
    ``max_docs`` caps the documents of one shared forward (a caller's own documents are never split)."""

    def __init__(self, loaded: Any, max_docs: int = 64) -> None:
        self.loaded = loaded
        self.max_docs = max_docs
        self.batches = 0  # shared forwards run, and the calls they served (for tests and the bench)
        self.calls = 0
        self._queue: list[_Call] = []
        self._busy = False
        self._cond = threading.Condition()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loaded, name)

    def predict_detailed(self, docs: Sequence[tuple[Any, str]], batch_size: int = 32) -> list[Any]:
        call = _Call(list(docs))
        with self._cond:
            self._queue.append(call)
            while self._busy and not call.finished:
                self._cond.wait()
            lead = not call.finished
            if lead:
                self._busy = True  # this caller leads: the queued calls, its own among them, until its own is done
        if lead:
            try:
                while not call.finished:
                    with self._cond:
                        batch = self._take()
                    self._run(batch, batch_size)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if call.error is not None:
            raise call.error
        return call.result if call.result is not None else []

    def _take(self) -> list[_Call]:
        """The queued calls (the first always; others while the batch stays within ``max_docs``), in order."""
        batch, n = [], 0
        while self._queue and (not batch or n + len(self._queue[0].docs) <= self.max_docs):
            call = self._queue.pop(0)
            batch.append(call)
            n += len(call.docs)
        return batch

    def _run(self, batch: list[_Call], batch_size: int) -> None:
        keyed = [((c, j), text) for c, call in enumerate(batch) for j, (_, text) in enumerate(call.docs)]
        out: list[list[Any]] = [[] for _ in batch]
        error: BaseException | None = None
        try:
            preds = self.loaded.predict_detailed(keyed, batch_size=batch_size) if keyed else []
            for ((c, j), _), pred in zip(keyed, preds, strict=True):
                out[c].append(dataclasses.replace(pred, doc_id=batch[c].docs[j][0])
                              if dataclasses.is_dataclass(pred) else pred)
        except Exception as exc:  # noqa: BLE001 - re-raised in every caller of the batch (a ReportLensError, say)
            error = exc
        with self._cond:
            self.batches += 1
            self.calls += len(batch)
            for call, result in zip(batch, out, strict=True):
                call.result, call.error, call.finished = (None, error, True) if error else (result, None, True)
            self._cond.notify_all()


_BATCHERS: dict[int, MicroBatcher] = {}
_BATCHERS_LOCK = threading.Lock()
MAX_BATCHERS = 4


@open_to_all
def batched(loaded: Any) -> MicroBatcher:
    """The one :class:`MicroBatcher` of the loaded model ``loaded`` (the loaders cache models per process, so the
    same object comes back for the same version; a few are kept, the oldest dropped first)."""
    with _BATCHERS_LOCK:
        found = _BATCHERS.get(id(loaded))
        if found is not None and found.loaded is loaded:
            return found
        found = MicroBatcher(loaded)
        _BATCHERS[id(loaded)] = found
        while len(_BATCHERS) > MAX_BATCHERS:
            _BATCHERS.pop(next(iter(_BATCHERS)))
        return found
