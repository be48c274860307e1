"""core.trainconfig: validation with helpful messages, JSON round trip, form metadata and CLI flags."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

import pytest

from core.alignment import AlignConfig
from core.trainconfig import (
    DEFAULT_LR,
    TrainConfig,
    add_align_cli_args,
    add_cli_args,
    align_from_cli_args,
    fields_for_form,
    from_cli_args,
)
from core.types import ReportLensError


def test_defaults_are_valid_and_round_trip_through_json():
    cfg = TrainConfig()
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and isinstance(again.target_modules, tuple)
    custom = TrainConfig(method="full", learning_rate=3e-5, target_modules=["query", "value"], max_steps=7,
                         class_weighting="inverse_sqrt", early_stopping_patience=2, label_all_subtokens=False)
    assert TrainConfig.from_dict(json.loads(json.dumps(custom.to_dict()))) == custom


def test_learning_rate_defaults_per_method_and_resolved_records_it():
    assert TrainConfig().lr == DEFAULT_LR["lora"]
    assert TrainConfig(method="full").lr == DEFAULT_LR["full"]
    assert TrainConfig(learning_rate=1e-4).lr == 1e-4
    assert TrainConfig(method="full").resolved().learning_rate == DEFAULT_LR["full"]


def test_align_config():
    assert TrainConfig(max_length=64, stride=8, label_all_subtokens=False).align() == AlignConfig(
        max_length=64, stride=8, label_all_subtokens=False)
    assert TrainConfig().align() == AlignConfig()  # the defaults did not move
    shrunk = TrainConfig(partial_token="shrink", overlap_policy="longest")
    assert shrunk.align() == AlignConfig(partial_token="shrink")
    assert TrainConfig.from_dict(json.loads(json.dumps(shrunk.to_dict()))).align().partial_token == "shrink"


def test_a_config_stored_before_a_field_existed_still_loads():
    stored = {k: v for k, v in TrainConfig(stride=8).to_dict().items() if k != "partial_token"}
    assert TrainConfig.from_stored({**stored, "gone_since": 3}) == TrainConfig(stride=8)
    assert TrainConfig.from_stored({}) == TrainConfig()
    with pytest.raises(ReportLensError, match="partial_token must be one of 'expand', 'shrink'; got 'grow'"):
        TrainConfig.from_stored({**stored, "partial_token": "grow"})


def test_target_modules_accept_a_comma_string():
    assert TrainConfig(target_modules="query, value").target_modules == ("query", "value")


def test_unknown_keys_are_named():
    with pytest.raises(ReportLensError, match=r"Unknown training config key\(s\) 'lr_typo'.*known keys: .*base_model"):
        TrainConfig.from_dict({"lr_typo": 1})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "qlora"}, "method must be one of 'lora', 'full'"),
    ({"task": "not a name"}, "task must be a task name such as 'ner' or 'classification'"),
    ({"lora_r": 0}, "lora_r must be between 1 and 256; got 0"),
    ({"lora_dropout": 1.5}, "lora_dropout must be between 0 and 0.9"),
    ({"learning_rate": 0}, r"learning_rate must be in \(0, 1\]"),
    ({"learning_rate": "fast"}, "learning_rate must be a number"),
    ({"epochs": 2.5}, "epochs must be an integer"),
    ({"batch_size": True}, "batch_size must be an integer"),
    ({"stride": 200}, "stride must be between 0 and half.*Change max_length or stride"),
    ({"dev_ratio": 0.4, "test_ratio": 0.3}, "keep their sum at 0.5 or below"),
    ({"target_modules": []}, "target_modules must list layer names"),
    ({"base_model": " "}, "base_model is empty"),
    ({"max_steps": 0}, "max_steps must be >= 1"),
    ({"label_all_subtokens": "yes"}, "label_all_subtokens must be true or false"),
    ({"partial_token": "grow"}, "partial_token must be one of 'expand', 'shrink'; got 'grow'"),
    ({"partial_token": None}, "partial_token must be one of"),
    ({"overlap_policy": "first"}, "overlap_policy must be one of 'longest'; got 'first'"),
])
def test_bad_values_say_what_and_how(kwargs, message):
    with pytest.raises(ReportLensError, match=message):
        TrainConfig(**kwargs)


def test_form_metadata_covers_every_field():
    specs = {s["name"]: s for s in fields_for_form()}
    assert list(specs) == [f.name for f in fields(TrainConfig)]
    assert specs["learning_rate"]["flag"] == "--lr" and specs["learning_rate"]["optional"]
    assert specs["method"]["type"] == "choice" and specs["method"]["choices"] == ("lora", "full")
    assert specs["lora_r"]["applies_to"] == "lora" and specs["lora_r"]["min"] == 1
    assert specs["target_modules"]["type"] == "list"
    assert specs["label_all_subtokens"]["type"] == "bool"
    for name, choices, default in (("partial_token", ("expand", "shrink"), "expand"),
                                   ("overlap_policy", ("longest",), "longest")):
        assert specs[name]["type"] == "choice" and specs[name]["choices"] == choices
        assert specs[name]["default"] == default and specs[name]["advanced"] and specs[name]["applies_to"] == "ner"
        assert specs[name]["flag"] == "--" + name.replace("_", "-")
    assert all(s["help"] for s in specs.values())


def test_cli_flags_override_only_what_is_given():
    parser = add_cli_args(argparse.ArgumentParser())
    parser.add_argument("--project")
    ns = parser.parse_args(["--project", "p", "--lr", "2e-4", "--epochs", "3", "--method", "full",
                            "--no-label-all-subtokens", "--target-modules", "query,value", "--patience", "2"])
    cfg = from_cli_args(ns)
    assert (cfg.learning_rate, cfg.epochs, cfg.method, cfg.label_all_subtokens) == (2e-4, 3, "full", False)
    assert cfg.target_modules == ("query", "value") and cfg.early_stopping_patience == 2
    assert cfg.batch_size == TrainConfig().batch_size and ns.project == "p"
    assert from_cli_args(parser.parse_args([])) == TrainConfig()
    base = TrainConfig(epochs=4)
    assert from_cli_args(parser.parse_args(["--seed", "1"]), base) == TrainConfig(epochs=4, seed=1)
    with pytest.raises(ReportLensError, match="lora_r"):
        from_cli_args(parser.parse_args(["--lora-r", "0"]))


def test_auto_epochs_give_small_projects_enough_steps():
    """Auto epochs aim at AUTO_STEPS optimizer steps: a 16-window project is not cut off at a few dozen steps (the
    old ceiling of 20 epochs gave it 40), a large one still gets the floor of passes, and an explicit value wins."""
    from core.trainconfig import AUTO_EPOCHS, AUTO_STEPS, MID_EPOCHS, MID_STEPS

    cfg = TrainConfig()  # batch 8, no accumulation
    assert cfg.epochs_for(16) == 50 and cfg.epochs_for(16) * cfg.steps_per_epoch(16) >= AUTO_STEPS
    assert cfg.epochs_for(1) == AUTO_EPOCHS[1]  # one window: one step per epoch, capped
    assert cfg.epochs_for(100_000) == AUTO_EPOCHS[0]
    # mid-size projects aim at about MID_STEPS steps within MID_EPOCHS passes: MACCROBAT's 487 windows get 10
    # passes (610 steps; 5 gave test F1 0.611, 10 gave 0.628), AnatEM's 1,096 keep the floor of 5 (685 steps)
    assert cfg.epochs_for(487) == MID_EPOCHS and cfg.epochs_for(487) * cfg.steps_per_epoch(487) >= MID_STEPS
    assert cfg.epochs_for(560) == 9 and 9 * cfg.steps_per_epoch(560) >= MID_STEPS > 8 * cfg.steps_per_epoch(560)
    assert cfg.epochs_for(1096) == AUTO_EPOCHS[0]
    assert cfg.epochs_for(200) == MID_EPOCHS  # 25 steps a pass: 250 steps, not 600 (at most MID_EPOCHS passes)
    assert [cfg.auto_epochs(n)[1] for n in (16, 200, 487, 1096)] == ["steps", "mid", "mid", "floor"]
    assert cfg.groups_by_length(64) and not cfg.groups_by_length(63)
    assert not TrainConfig(grad_accum=2).groups_by_length(64) and not TrainConfig(group_by_length=False) \
        .groups_by_length(10_000)
    assert TrainConfig(epochs=3).epochs_for(16) == 3
    assert TrainConfig(grad_accum=2).epochs_for(16) == 100  # one update per epoch


def test_alignment_flags_for_training_and_convert():
    parser = add_cli_args(argparse.ArgumentParser())
    cfg = from_cli_args(parser.parse_args(["--partial-token", "shrink", "--first-subtoken-only"]))
    assert (cfg.partial_token, cfg.label_all_subtokens, cfg.overlap_policy) == ("shrink", False, "longest")
    with pytest.raises(SystemExit):  # argparse names the choices
        parser.parse_args(["--partial-token", "grow"])

    conv = add_align_cli_args(argparse.ArgumentParser())
    assert align_from_cli_args(conv.parse_args([])) == AlignConfig()
    align = align_from_cli_args(conv.parse_args(["--max-length", "24", "--stride", "4", "--partial-token", "shrink",
                                                 "--first-subtoken-only"]))
    assert align == AlignConfig(max_length=24, stride=4, label_all_subtokens=False, partial_token="shrink")
    assert align_from_cli_args(conv.parse_args(["--no-label-all-subtokens"])).label_all_subtokens is False
    with pytest.raises(SystemExit):  # only alignment flags: convert does not train
        conv.parse_args(["--lr", "1e-3"])
    with pytest.raises(ReportLensError, match="stride must be between 0 and half.*Change max_length or stride"):
        align_from_cli_args(conv.parse_args(["--max-length", "24", "--stride", "20"]))


@pytest.mark.parametrize("command", [["train", "--project", "p"], ["convert", "export.json", "--out", "o.jsonl"]])
def test_cli_commands_take_the_alignment_flags(command):
    from cli import build_parser

    ns = build_parser().parse_args([*command, "--partial-token", "shrink", "--overlap-policy", "longest",
                                    "--first-subtoken-only", "--max-length", "128"])
    assert from_cli_args(ns).align() == AlignConfig(max_length=128, partial_token="shrink", label_all_subtokens=False)


def test_the_task_registry_decides_which_task_names_exist():
    """TrainConfig takes any task name; queueing checks it against training.tasks (so a new task is one module and
    one registry line), and the form offers exactly the registered tasks."""
    from services.training import check, form_fields

    assert TrainConfig(task="re").task == "re"
    with pytest.raises(ReportLensError, match="Unknown task 're'; known tasks: classification, ner"):
        check(TrainConfig(task="re"))
    assert check(TrainConfig()) == TrainConfig()
    [task] = [f for f in form_fields() if f["name"] == "task"]
    assert task["type"] == "choice" and set(task["choices"]) == {"ner", "classification"}


def test_early_stopping_patience_auto_depends_on_a_held_out_dev_split():
    from core.trainconfig import AUTO_PATIENCE

    cfg = TrainConfig()
    assert cfg.early_stopping_patience is None  # auto
    assert cfg.patience_for(True) == AUTO_PATIENCE and cfg.patience_for(False) == 0
    assert cfg.resolved(40, has_held_out_dev=True).early_stopping_patience == AUTO_PATIENCE
    assert cfg.resolved(40, has_held_out_dev=False).early_stopping_patience == 0
    assert cfg.resolved(40).early_stopping_patience is None  # the split is not known yet
    assert TrainConfig(early_stopping_patience=0).resolved(40, has_held_out_dev=True).early_stopping_patience == 0
    assert TrainConfig(early_stopping_patience=5).patience_for(False) == 5


def test_training_lever_defaults_and_a_config_stored_before_them_loads():
    cfg = TrainConfig()
    assert cfg.group_by_length and not cfg.refit and cfg.dev_evaluations == 8  # grouping: on since AnatEM
    assert cfg.optimizer == "adamw_torch_fused"
    old = {k: v for k, v in TrainConfig(early_stopping_patience=0).to_dict().items()
           if k not in ("group_by_length", "dev_evaluations", "refit", "optimizer")}
    loaded = TrainConfig.from_stored(old)
    assert loaded.early_stopping_patience == 0 and loaded.dev_evaluations == 8  # what it stored stays
    with pytest.raises(ReportLensError, match="optimizer must be one of 'adamw_torch_fused', 'adamw_torch'"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ReportLensError, match="refit must be true or false"):
        TrainConfig(refit="yes")
    assert not cfg.train_on_dev
    with pytest.raises(ReportLensError, match="refit and train_on_dev both train the final model on train\\+dev"):
        TrainConfig(refit=True, train_on_dev=True)
    with pytest.raises(ReportLensError, match="no held-out dev score to stop early on"):
        TrainConfig(train_on_dev=True, early_stopping_patience=2)
    assert TrainConfig(train_on_dev=True, early_stopping_patience=0).train_on_dev
    assert from_cli_args(add_cli_args(argparse.ArgumentParser()).parse_args(["--train-on-dev"])) == TrainConfig(
        train_on_dev=True)
    parser = add_cli_args(argparse.ArgumentParser())
    ns = parser.parse_args(["--refit", "--no-group-by-length", "--dev-evaluations", "0", "--optimizer",
                            "adamw_torch"])
    assert from_cli_args(ns) == TrainConfig(refit=True, group_by_length=False, dev_evaluations=0,
                                            optimizer="adamw_torch")


def test_explain_defaults_gives_each_resolved_value_with_a_reason():
    from core.trainconfig import AUTO_PATIENCE, explain_defaults

    rows = explain_defaults(TrainConfig(), n_windows=36, n_docs=50)
    by_field = {f: (v, why) for f, v, why in rows}
    assert list(by_field) == ["learning_rate", "epochs", "early_stopping_patience", "method", "batch_size", "lora_r",
                              "attention_dropout", "group_by_length", "dev_evaluations"]
    assert by_field["attention_dropout"][0] == 0.0 and "faster" in by_field["attention_dropout"][1]
    assert dict((f, w) for f, _, w in explain_defaults(TrainConfig(attention_dropout=None), 36, 50))[
        "attention_dropout"] == "the base model's own"
    assert dict((f, w) for f, _, w in explain_defaults(TrainConfig(attention_dropout=0.1), 36, 50))[
        "attention_dropout"] == "set in the form"
    assert "too few" in by_field["group_by_length"][1]  # 36 windows: the sampler groups nothing below 64
    assert "less padding" in dict((f, w) for f, _, w in explain_defaults(TrainConfig(), 1096, 587))["group_by_length"]
    assert "group_by_length" not in {f for f, _, _ in explain_defaults(TrainConfig(group_by_length=False), 36, 50)}
    assert by_field["method"][0] == "lora" and "LoRA" in by_field["method"][1]
    assert by_field["batch_size"][0] == 8 and "set in the form" not in by_field["batch_size"][1]
    assert all(isinstance(why, str) and why for _, _, why in rows)
    assert by_field["learning_rate"][0] == DEFAULT_LR["lora"]
    assert by_field["epochs"][0] == TrainConfig().epochs_for(36) == 20 and "5 step(s) per pass" in by_field["epochs"][1]
    assert by_field["early_stopping_patience"][0] == AUTO_PATIENCE
    assert by_field["dev_evaluations"] == (8, "dev scored every 13 steps (8 times in 100 steps), the last step always")
    tiny = {f: (v, why) for f, v, why in explain_defaults(TrainConfig(), n_windows=6, n_docs=6)}
    assert tiny["early_stopping_patience"][0] == 0 and "too small" in tiny["early_stopping_patience"][1]
    assert tiny["epochs"][0] == 100 and "ceiling" in tiny["epochs"][1]
    on_dev = {f: (v, why) for f, v, why in explain_defaults(TrainConfig(train_on_dev=True), 36, 50)}
    assert on_dev["early_stopping_patience"][0] == 0 and "trains on the dev split" in on_dev[
        "early_stopping_patience"][1]
    assert on_dev["dev_evaluations"][0] == 0 and "scored once at the end" in on_dev["dev_evaluations"][1]
    mine = {f: (v, why) for f, v, why in explain_defaults(
        TrainConfig(learning_rate=1e-4, epochs=3, early_stopping_patience=0, dev_evaluations=0), 36, 50)}
    assert mine["learning_rate"] == (1e-4, "set in the form") and mine["epochs"][0] == 3
    assert mine["early_stopping_patience"] == (0, "set in the form (off)")
    assert mine["dev_evaluations"][0] == 3 and "after every epoch" in mine["dev_evaluations"][1]
    assert dict((f, w) for f, _, w in explain_defaults(TrainConfig(batch_size=4), 36, 50))["batch_size"] == \
        "set in the form"
    assert "lora_r" not in dict((f, v) for f, v, _ in explain_defaults(TrainConfig(method="full"), 36, 50))
    assert dict((f, v) for f, v, _ in explain_defaults(TrainConfig(lora_r=8), 36, 50))["lora_r"] == 8
    assert "train_new_vocab" not in by_field  # not an adapted base: nothing to say
    adapted = {f: (v, why) for f, v, why in explain_defaults(TrainConfig(), 36, 50, new_vocab_rows=105)}
    assert adapted["train_new_vocab"][0] is True and "105 tokens" in adapted["train_new_vocab"][1]
    frozen = dict((f, w) for f, _, w in explain_defaults(TrainConfig(train_new_vocab=False), 36, 50, 105))
    assert frozen["train_new_vocab"].startswith("set in the form")
    assert "train_new_vocab" not in dict((f, v) for f, v, _ in explain_defaults(TrainConfig(method="full"), 36, 50,
                                                                                 105))  # full trains every row
