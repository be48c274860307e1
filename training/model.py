"""Models from a base encoder, with or without a LoRA adapter (peft): the token-classification model, and the
loading helpers every task shares (quiet loading, layer checks, a saved folder back onto its base)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.trainconfig import TrainConfig
from core.types import LabelSchema, ReportLensError
from training.artifacts import ADAPTER_FILE
from training.encoding import resolve_model

log = logging.getLogger(__name__)


def quiet_load(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a loader without transformers' notices and progress bars (a fresh classifier head is the point here, and
    a job's log should hold our progress, not tqdm bars), nor peft's use of a deprecated transformers property."""
    from transformers.utils import logging as hf_logging

    before, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return fn(*args, **kwargs)
    finally:
        hf_logging.set_verbosity(before)
        if bars:
            hf_logging.enable_progress_bar()


def load_base_model(base_model: str, schema: LabelSchema, attn_implementation: str = "sdpa") -> Any:
    """``AutoModelForTokenClassification`` with one output per BIO tag of ``schema`` (head randomly initialised)."""
    from transformers import AutoModelForTokenClassification

    path = resolve_model(base_model)
    try:
        model = quiet_load(
            AutoModelForTokenClassification.from_pretrained, path, num_labels=len(schema.tags),
            id2label=schema.id2label, label2id=schema.label2id, attn_implementation=attn_implementation,
            local_files_only=Path(path).is_dir())
    except (OSError, ValueError) as exc:
        raise ReportLensError(f"Could not load base model {base_model!r} from {path} for token classification: "
                              f"{exc}. Choose a BERT-family encoder folder.") from exc
    return model


def linear_layer_names(model: Any) -> list[str]:
    """The distinct last names of the model's linear layers (what LoRA ``target_modules`` can name)."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)})


def check_target_modules(model: Any, target_modules: tuple[str, ...]) -> None:
    if target_modules == ("all-linear",):
        return
    available = [n for n in linear_layer_names(model) if n != "classifier"]
    missing = [t for t in target_modules if t not in available]
    if missing:
        raise ReportLensError(
            f"LoRA target module(s) {', '.join(map(repr, missing))} match no linear layer of this base model; its "
            f"linear layers are named {', '.join(available)}. Set target_modules to some of those, or 'all-linear'.")


def check_max_length(model: Any, config: TrainConfig) -> None:
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and config.max_length > limit:
        raise ReportLensError(f"max_length {config.max_length} exceeds what {config.base_model!r} can read "
                              f"({limit} positions); set max_length to {limit} or less.")


QUERY_NAMES = ("query", "q_lin", "q_proj", "q")  # a module holding one of these computes attention (BERT, DistilBERT..)


@contextmanager
def base_dropout(model: Any, hidden: float | None, attention: float | None) -> Iterator[None]:
    """The base model's dropouts inside the block, put back after: those on the attention probabilities (a dropout
    inside a module that holds the query projection) at ``attention``, every other one (hidden states, embeddings,
    the classifier's input) at ``hidden``; ``None`` keeps the model's own. LoRA's own dropout (``lora_dropout``) is
    left alone. The model's config is not touched: a saved model keeps its own rates, which MC dropout (the ``bald``
    scoring strategy) needs."""
    import torch

    changed = []
    for parent_name, parent in model.named_modules():
        is_attention = any(isinstance(getattr(parent, q, None), torch.nn.Module) for q in QUERY_NAMES)
        for module in parent.children():
            p = attention if is_attention else hidden
            if isinstance(module, torch.nn.Dropout) and "lora_dropout" not in parent_name and p is not None:
                changed.append((module, module.p))
                module.p = p
    try:
        yield
    finally:
        for module, old in changed:
            module.p = old


def build_model(config: TrainConfig, schema: LabelSchema) -> Any:
    """A trainable model for ``config.method``: the whole encoder (``full``) or a peft LoRA wrapper whose adapters
    and (fully trained) classifier head are the only trainable weights."""
    model = load_base_model(config.base_model, schema, config.attn_implementation)
    check_max_length(model, config)
    if config.method == "full":
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    check_target_modules(model, config.target_modules)
    targets: Any = "all-linear" if config.target_modules == ("all-linear",) else list(config.target_modules)
    lora = LoraConfig(task_type=TaskType.TOKEN_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=targets, modules_to_save=["classifier"],
                      trainable_token_indices=new_vocab_rows(config, model))
    return quiet_load(get_peft_model, model, lora)


def new_vocab_rows(config: TrainConfig, model: Any) -> list[int] | None:
    """The embedding rows LoRA also trains (``train_new_vocab``): those an adaptation of the base model added to its
    vocabulary (``training.artifacts.added_vocab_rows``), when the model has them; ``None`` = none."""
    if not config.train_new_vocab:
        return None
    from training.artifacts import added_vocab_rows

    rows = added_vocab_rows(resolve_model(config.base_model))
    size = model.get_input_embeddings().weight.shape[0]
    return [i for i in rows if i < size] or None


def load_saved(model_dir: str | Path, base: Callable[[], Any], auto_class: Any, attn_implementation: str) -> Any:
    """A saved model folder in eval mode: its LoRA adapter on ``base()`` (the base model with a fresh head of the
    right size) when the folder holds one, else the full model through ``auto_class.from_pretrained``."""
    if (Path(model_dir) / ADAPTER_FILE).is_file():
        from peft import PeftModel

        model = quiet_load(PeftModel.from_pretrained, base(), str(model_dir))
    else:
        model = quiet_load(auto_class.from_pretrained, str(model_dir), attn_implementation=attn_implementation,
                           local_files_only=True)
    model.eval()
    return model


def parameter_counts(model: Any) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total}


def is_peft(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)
