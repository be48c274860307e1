"""Training-step micro benchmark: seconds per optimizer step of the bundled model with the default LoRA adapter on one
fixed batch, for the options of one step that TrainConfig does not show in a full run's noise.

    python bench/train_step_bench.py --steps 10            # eager fused vs plain AdamW, then torch.compile
    python bench/train_step_bench.py --no-compile --batch 8 --length 160
    python bench/train_step_bench.py --dropout --length 256 # the base model's dropout: its own 0.1, none, or one kind

The dropout variants (``--dropout``) time the same LoRA step with the bundled model's own dropout (0.1 on hidden
states and attention probabilities), with none, and with only one of the two kinds (hidden states only is the
default: ``TrainConfig.attention_dropout`` 0), to show where the cost of dropout lies.

Each variant builds the same model (seed 0), runs 2 warm-up steps (torch.compile compiles in them; that time is
reported apart) and then times ``--steps`` steps of forward, backward and ``optimizer.step()``, in wall and process CPU
seconds (on a shared machine with ``OMP_NUM_THREADS=1`` the CPU seconds are the steadier figure). Prints one JSON line
per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# variant -> which of the base model's dropouts stay on ("own": all, at the model's 0.1)
DROPOUT_VARIANTS = {"dropout_own": "own", "dropout_attention_only": "attention", "dropout_hidden_only": "hidden",
                    "dropout_none": ""}


def run(variant: str, steps: int, batch: int, length: int) -> dict:
    import torch

    from core.trainconfig import TrainConfig
    from core.types import LabelSchema
    from training.model import base_dropout, build_model

    torch.manual_seed(0)
    schema = LabelSchema(("FINDING", "RHYTHM", "HEART_RATE"))
    model = build_model(TrainConfig(), schema)
    # the optimizer variants train as training does (TrainConfig's dropouts); the dropout variants keep the model's
    # own dropout on the kinds they name and turn the other kind off
    keep = DROPOUT_VARIANTS.get(variant)
    hidden, attention = ((TrainConfig().dropout, TrainConfig().attention_dropout) if keep is None else
                         (None if keep in ("own", "hidden") else 0.0, None if keep in ("own", "attention") else 0.0))
    with base_dropout(model, hidden, attention):
        return time_steps(model, schema, variant, steps, batch, length)


def time_steps(model, schema, variant: str, steps: int, batch: int, length: int) -> dict:
    import torch

    model.train()
    ids = torch.randint(1000, 20000, (batch, length))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "labels": torch.randint(0, len(schema.tags), (batch, length))}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3, fused=variant != "adamw_torch")
    forward = torch.compile(model) if variant == "compile" else model

    def step() -> None:
        loss = forward(**inputs).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(2):
        step()
    warm = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    per_step = (time.perf_counter() - t0) / steps
    cpu_per_step = (time.process_time() - c0) / steps
    kept = sorted({round(m.p, 3) for m in model.modules() if isinstance(m, torch.nn.Dropout)})
    return {"variant": variant, "dropout_p": kept, "batch": batch, "length": length, "steps": steps,
            "warmup_s": round(warm, 2),
            "s_per_step": round(per_step, 4), "cpu_s_per_step": round(cpu_per_step, 4),
            "threads": torch.get_num_threads(),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=160)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--dropout", action="store_true", help="time the dropout variants instead")
    ap.add_argument("--reverse", action="store_true", help="run the variants in the opposite order (order effects)")
    args = ap.parse_args()
    variants = (list(DROPOUT_VARIANTS) if args.dropout
                else ["adamw_torch_fused", "adamw_torch"] + ([] if args.no_compile else ["compile"]))
    variants = variants[::-1] if args.reverse else variants
    for variant in variants:
        print(json.dumps(run(variant, args.steps, args.batch, args.length)), flush=True)


if __name__ == "__main__":
    main()
