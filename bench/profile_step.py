"""Where the time of a ReportLens training step goes: the bundled model on real AnatEM windows (issue 17).

    python bench/profile_step.py                      # defaults (LoRA), 20 + 10 timed steps, about 3 minutes
    python bench/profile_step.py --method full --steps 20
    python bench/profile_step.py --steps 3 --dev-docs 4 --max-docs 20   # smoke run

The AnatEM train documents (``bench/anatem.py``: 10 sentences each) are encoded once as training encodes them
(``training.tasks.ner.NerTask.encode``: tokenisation, alignment, windows of ``max_length`` tokens) and the dev
documents prepared once for evaluation (``training.evaluate.Evaluator.build``); both are timed. Then ``--steps``
training steps run by hand the way the Trainer runs them (random batches of ``batch_size`` windows,
``DataCollatorForTokenClassification`` padding, forward with the loss, backward and gradient clipping, AdamW step +
zero_grad), each part timed with ``time.perf_counter``, the step's CPU time with ``time.process_time`` (``--warmup``
untimed passes first). One dev evaluation (the per-epoch one:
``Evaluator.evaluate(max_examples=0)``) on ``--dev-docs`` documents is timed and scaled to the whole dev file by
windows, then compared with an epoch of training (steps per epoch x the median step). The share of padded tokens per
batch is counted over one whole epoch, with random batches (the Trainer's default) and with
``transformers.trainer_pt_utils.LengthGroupedSampler`` (``group_by_length=True``), and ``--grouped-steps`` steps are
timed on length-grouped batches too, interleaved with the random ones (one of each in turn, so load from other
processes hits both alike). ``--torch-profile N`` adds ``torch.profiler``'s top operators over N steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pad_share(batches: list[list[int]], lengths: list[int]) -> dict:
    """Padded tokens / all tokens of the padded batches (each padded to its longest window)."""
    shares, real, padded = [], 0, 0
    for b in batches:
        lens = [lengths[i] for i in b]
        n_real, n_all = sum(lens), max(lens) * len(lens)
        shares.append(1 - n_real / n_all)
        real, padded = real + n_real, padded + n_all
    return {"batches": len(batches), "pad_share_total": round(1 - real / padded, 4),
            "pad_share_median_batch": round(statistics.median(shares), 4),
            "tokens_per_epoch_padded": padded, "tokens_per_epoch_real": real}


def epoch_batches(n: int, batch_size: int, lengths: list[int], grouped: bool, seed: int) -> list[list[int]]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    if grouped:
        from transformers.trainer_pt_utils import LengthGroupedSampler

        order = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=gen))
    else:
        order = torch.randperm(n, generator=gen).tolist()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def time_steps(model, optimizer, collator, items, runs: dict[str, list[list[int]]], warmup: int) -> dict:  # noqa: ANN001
    """Training steps on the batches of each run, the runs interleaved (one step of each in turn, so a change of
    load on shared cores hits them alike); per run the median wall time of each part and the CPU time of the step
    (``time.process_time``: all threads of this process, less sensitive to other processes than wall time)."""
    import torch

    names = ("collate", "forward", "backward", "optimizer", "step")
    parts = {run: {name: [] for name in (*names, "step_cpu")} for run in runs}
    tokens: dict[str, list[int]] = {run: [] for run in runs}
    model.train()
    for _ in range(warmup):
        for batch in next(iter(runs.values()))[:1]:
            model(**collator([items[i] for i in batch])).loss.backward()
            optimizer.zero_grad()
    for k in range(max(len(b) for b in runs.values())):
        for run, batches in runs.items():
            if k >= len(batches):
                continue
            c0, t0 = time.process_time(), time.perf_counter()
            inputs = collator([items[i] for i in batches[k]])
            t1 = time.perf_counter()
            loss = model(**inputs).loss
            t2 = time.perf_counter()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as the Trainer does (max_grad_norm 1.0)
            t3 = time.perf_counter()
            optimizer.step()
            optimizer.zero_grad()
            t4, c4 = time.perf_counter(), time.process_time()
            for name, dt in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
                parts[run][name].append(dt)
            parts[run]["step_cpu"].append(c4 - c0)
            tokens[run].append(int(inputs["input_ids"].numel()))
    out = {}
    for run, p in parts.items():
        total = sum(p["step"]) or 1e-9
        out[run] = {"steps_timed": len(p["step"]),
                    "median_s": {n: round(statistics.median(v), 4) for n, v in p.items()},
                    "share_of_step": {n: round(sum(p[n]) / total, 3) for n in names[:-1]},
                    "padded_tokens_per_batch_mean": round(statistics.fmean(tokens[run])),
                    "steps_per_s": round(len(p["step"]) / total, 3)}
    return out


def torch_profile(model, optimizer, collator, items, batches) -> list[dict]:  # noqa: ANN001
    from torch.profiler import ProfilerActivity, profile

    model.train()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            loss = model(**collator([items[i] for i in batch])).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) or 1
    return [{"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=["lora", "full"], default="lora")
    ap.add_argument("--config", default="{}", help="other TrainConfig fields as JSON, e.g. '{\"max_length\": 128}'")
    ap.add_argument("--steps", type=int, default=20, help="timed steps on random batches (after --warmup)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed forward+backward passes first")
    ap.add_argument("--grouped-steps", type=int, default=10, help="timed steps on length-grouped batches")
    ap.add_argument("--max-docs", type=int, default=None, help="AnatEM train documents to encode (default all)")
    ap.add_argument("--dev-docs", type=int, default=40, help="dev documents for the timed evaluation")
    ap.add_argument("--torch-profile", type=int, default=0, help="steps under torch.profiler (0 = none)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "profile_step.json"))
    args = ap.parse_args()
    load_before = os.getloadavg()

    import torch

    from bench.anatem import documents
    from core.trainconfig import TrainConfig
    from core.types import Document, LabelSchema
    from training.encoding import load_tokenizer
    from training.evaluate import Evaluator
    from training.model import build_model, parameter_counts
    from training.tasks.base import TaskData
    from training.tasks.ner import NerTask

    def as_docs(tasks: list) -> list[Document]:
        return [Document(id=t.task_id, text=t.text, spans=t.annotations[0].spans) for t in tasks]

    out: dict = {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg_before": load_before}
    t = time.perf_counter()
    splits = documents()
    train_docs = as_docs(splits["train"][:args.max_docs] if args.max_docs else splits["train"])
    dev_all = as_docs(splits["dev"])
    out["read_s"] = round(time.perf_counter() - t, 2)
    config = TrainConfig(method=args.method, **json.loads(args.config)).resolved()
    schema = LabelSchema.from_labels({"Anatomy"})
    task = NerTask()
    tokenizer = load_tokenizer(config.base_model)
    data = TaskData(None, train_docs, schema, config, {})
    t = time.perf_counter()
    encoded = task.encode(tokenizer, train_docs, data, config)
    out["encode_train"] = {"s": round(time.perf_counter() - t, 2), "documents": len(train_docs),
                           "windows": len(encoded.items)}
    config = config.resolved(len(encoded.items))
    dev_docs = dev_all[:args.dev_docs]
    t = time.perf_counter()
    dev = Evaluator.build(tokenizer, dev_docs, config)
    out["prepare_dev"] = {"s": round(time.perf_counter() - t, 2), "documents": len(dev_docs)}
    t = time.perf_counter()
    torch.manual_seed(args.seed)
    model = build_model(config, schema)
    out["build_model_s"] = round(time.perf_counter() - t, 2)
    out["parameters"] = parameter_counts(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    collator = task.collator(tokenizer)
    items = encoded.items
    lengths = [len(it["input_ids"]) for it in items]
    out["config"] = {"method": config.method, "lr": config.lr, "batch_size": config.batch_size,
                     "max_length": config.max_length, "epochs_auto": config.epochs}
    random_batches = epoch_batches(len(items), config.batch_size, lengths, False, args.seed)
    grouped_batches = epoch_batches(len(items), config.batch_size, lengths, True, args.seed)
    out["window_length"] = {"median": statistics.median(lengths), "max": max(lengths), "min": min(lengths)}
    out["padding"] = {"random": pad_share(random_batches, lengths),
                      "length_grouped": pad_share(grouped_batches, lengths)}
    runs = {"random": (random_batches * 2)[:args.steps]}
    if args.grouped_steps:
        # grouped batches evenly spread over the epoch (their lengths range from the longest to the shortest)
        stride = max(1, len(grouped_batches) // args.grouped_steps)
        runs["length_grouped"] = grouped_batches[::stride][:args.grouped_steps]
    out["steps"] = time_steps(model, optimizer, collator, items, runs, args.warmup)
    steps_per_epoch = config.steps_per_epoch(len(items))
    step_med = out["steps"]["random"]["median_s"]
    epoch_train_s = steps_per_epoch * step_med["step"]
    epoch_train_cpu = steps_per_epoch * step_med["step_cpu"]
    c, t = time.process_time(), time.perf_counter()
    dev.evaluate(model, max_examples=0)
    dev_s, dev_cpu = time.perf_counter() - t, time.process_time() - c
    dev_windows = sum(len(p.windows) for p in dev.prepared)
    all_dev_windows = sum(len(p.windows) for p in Evaluator.build(tokenizer, dev_all, config).prepared) \
        if len(dev_docs) < len(dev_all) else dev_windows
    scale = all_dev_windows / max(1, dev_windows)
    out["dev_eval"] = {"s": round(dev_s, 2), "cpu_s": round(dev_cpu, 2), "documents": len(dev_docs),
                       "windows": dev_windows, "whole_dev_windows": all_dev_windows,
                       "whole_dev_estimate_s": round(dev_s * scale, 1),
                       "whole_dev_estimate_cpu_s": round(dev_cpu * scale, 1), "steps_per_epoch": steps_per_epoch,
                       "epoch_train_estimate_s": round(epoch_train_s, 1),
                       "epoch_train_estimate_cpu_s": round(epoch_train_cpu, 1),
                       "dev_eval_over_epoch_train_wall": round(dev_s * scale / max(epoch_train_s, 1e-9), 3),
                       "dev_eval_over_epoch_train_cpu": round(dev_cpu * scale / max(epoch_train_cpu, 1e-9), 3)}
    if args.torch_profile:
        out["torch_profile_top_ops"] = torch_profile(model, optimizer, collator, items,
                                                     random_batches[:args.torch_profile])
    out["load_avg_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
