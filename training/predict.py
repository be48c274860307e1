"""Torch models as a :class:`training.runtime.Runtime`, and token-classification predictions with them.

Documents are never truncated: each is cut into the windows of :func:`core.alignment.make_windows` (the same
``max_length``/``stride`` as in training), windows of all documents are batched longest first (little padding)
by :func:`training.runtime.pad_batches`, and each token takes the probabilities of the window where it has the
most context (:func:`core.alignment.merge_window_probs`). Decoding (:func:`core.alignment.probs_to_spans`, word-level
and valid BIO by default, :mod:`core.decoding`) keeps adjacent entities of the same label apart when the model tags
the second one ``B-``. All of that lives in
:mod:`training.runtime`, shared with the ONNX runtime; this module adds only the torch forward call
(:class:`TorchRuntime`) and keeps the functions callers have always used, which accept a torch model or a runtime.

Shared by the tasks, evaluation, scoring and saved-model inference; it imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from core.trainconfig import TrainConfig
from core.types import LabelSchema, ReportLensError, Span
from training import runtime as rt
from training.encoding import PreparedDoc
from training.runtime import DocPrediction, Runtime, Stopped, WindowBatch, decode, pad_batches, predict_with

__all__ = ["DocPrediction", "Runtime", "Stopped", "TorchRuntime", "WindowBatch", "as_runtime", "decode",
           "predict_detailed", "predict_documents", "schema_of", "window_batches", "window_logits",
           "window_probabilities"]


class TorchRuntime(Runtime):
    """A torch model (transformers, peft or merged) behind the runtime protocol: eval mode (put back afterwards),
    no gradients, numpy in and out."""

    name = "torch"
    supports_dropout = True

    def __init__(self, model: Any) -> None:
        self.model = model
        self.device = next(model.parameters()).device

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray, hidden: bool, train_dropout: bool = False):
        import torch

        model = self.model
        was_training = model.training
        changed = was_training or train_dropout  # eval() walks every module: ~2.5 ms a call for MiniLM, so skip it
        if was_training:
            model.eval()
        if train_dropout:
            for mod in model.modules():
                if isinstance(mod, torch.nn.Dropout):
                    mod.train()
        try:
            with torch.inference_mode():
                ids = torch.from_numpy(np.ascontiguousarray(input_ids)).to(self.device)
                mask = torch.from_numpy(np.ascontiguousarray(attention_mask)).to(self.device)
                out = (model(input_ids=ids, attention_mask=mask, output_hidden_states=True) if hidden
                       else model(input_ids=ids, attention_mask=mask))
                logits = out.logits.float().cpu().numpy()
                return logits, (out.hidden_states[-1].float().cpu().numpy() if hidden else None)
        finally:
            if changed:
                model.train(was_training)

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self._run(input_ids, attention_mask, False)[0]

    def forward_hidden(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._run(input_ids, attention_mask, True)

    def dropout_passes(self, input_ids: np.ndarray, attention_mask: np.ndarray, passes: int) -> np.ndarray:
        """``(batch, passes, width, n_tags)`` probabilities, each pass with only the dropout layers training."""
        return np.stack([rt.softmax(self._run(input_ids, attention_mask, False, train_dropout=True)[0])
                         for _ in range(passes)], axis=1)

    @contextmanager
    def dropout_seed(self, seed: int) -> Iterator[None]:
        import torch

        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            yield
        finally:
            torch.random.set_rng_state(state)


def as_runtime(model: Any) -> Runtime:
    """``model`` itself when it is a runtime, else a torch model wrapped in :class:`TorchRuntime`."""
    return model if isinstance(model, Runtime) else TorchRuntime(model)


def window_batches(prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
                   device: Any = None) -> Iterator[WindowBatch]:
    """:func:`training.runtime.pad_batches` as torch tensors (on ``device`` when given)."""
    import torch

    for wb in pad_batches(prepared, pad_id, batch_size):
        ids, mask = torch.from_numpy(wb.input_ids), torch.from_numpy(wb.attention_mask)
        yield WindowBatch(wb.keys, wb.windows, ids.to(device) if device is not None else ids,
                          mask.to(device) if device is not None else mask)


def schema_of(model: Any) -> LabelSchema:
    """The label schema a token-classification model was built with (from its ``id2label``)."""
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    tags = [id2label[i] for i in range(len(id2label))]
    schema = LabelSchema(tuple(t[2:] for t in tags[1::2]))
    if tuple(tags) != schema.tags:
        raise ReportLensError(f"The model's labels {tags} are not a ReportLens BIO tag set (O, B-X, I-X, ...); "
                              "use a model trained by ReportLens.")
    return schema


def window_logits(model: Any, prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
                  should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[WindowBatch, Any]]:
    """:func:`training.runtime.window_logits` for a torch model (or a runtime), the logits as a torch tensor."""
    import torch

    for wb, logits in rt.window_logits(as_runtime(model), prepared, pad_id, batch_size, should_stop):
        yield wb, torch.from_numpy(logits)


def window_probabilities(
    model: Any, prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
    should_stop: Callable[[], bool] | None = None,
) -> list[np.ndarray] | None:
    """Merged per-token probabilities per document; ``None`` if ``should_stop()`` turned true between batches."""
    return rt.window_probabilities(as_runtime(model), prepared, pad_id, batch_size, should_stop)


def predict_detailed(
    model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig, batch_size: int = 32
) -> list[DocPrediction]:
    """Per-document token probabilities and spans (for uncertainty scores and explanations)."""
    return predict_with(as_runtime(model), tokenizer, docs, schema_of(model), config.align(), batch_size)


def predict_documents(
    model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig, batch_size: int = 32
) -> list[list[tuple[Span, float]]]:
    """Spans with scores (mean over their words of the chosen tag's probability) for each ``(id, text)``, in order."""
    return [p.spans for p in predict_detailed(model, tokenizer, docs, config, batch_size)]
