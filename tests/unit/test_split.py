"""core.split: hash splits that never move a document, tiny-project fallback, repairs and coverage notes."""

from __future__ import annotations

from collections import Counter

import pytest

from core.split import assign_split, document_key, split_documents
from core.types import ReportLensError


def keys(n: int, start: int = 0) -> list[tuple[int, str]]:
    return [(i, document_key(i, f"text {i}")) for i in range(start, start + n)]


def test_document_key_prefers_the_task_id():
    assert document_key(12, "whatever") == "task:12"
    assert document_key(None, "abc") == document_key(None, "abc") != document_key(None, "abd")
    assert document_key(None, "abc").startswith("text:")


def test_assign_split_is_deterministic_and_near_the_ratios():
    got = Counter(assign_split(f"task:{i}", 0, 0.15, 0.15) for i in range(4000))
    assert got == Counter(assign_split(f"task:{i}", 0, 0.15, 0.15) for i in range(4000))
    assert abs(got["test"] / 4000 - 0.15) < 0.02 and abs(got["dev"] / 4000 - 0.15) < 0.02
    other_seed = Counter(assign_split(f"task:{i}", 1, 0.15, 0.15) for i in range(4000))
    assert [assign_split(f"task:{i}", 1) for i in range(50)] != [assign_split(f"task:{i}", 0) for i in range(50)]
    assert abs(other_seed["train"] / 4000 - 0.70) < 0.03


def test_adding_documents_never_moves_existing_ones():
    before = split_documents(keys(200), seed=5)
    after = split_documents(keys(200) + keys(300, start=1000), seed=5)
    for name in ("train", "dev", "test"):
        assert set(getattr(before, name)) <= set(getattr(after, name))
    assert before.notes == () and not before.dev_is_train


def test_larger_test_ratio_only_moves_documents_into_test():
    small = split_documents(keys(300), dev_ratio=0.1, test_ratio=0.1)
    large = split_documents(keys(300), dev_ratio=0.1, test_ratio=0.2)
    assert set(small.test) <= set(large.test)


def test_tiny_project_trains_on_everything_and_says_so():
    split = split_documents(keys(6))
    assert split.train == split.dev == tuple(range(6)) and split.test == ()
    assert split.dev_is_train and split.notes[0].code == "tiny_project"
    assert "measure fit" in split.notes[0].message


def test_empty_split_is_repaired_and_reported():
    # find a seed where 10 documents leave dev or test empty
    for seed in range(200):
        plain = Counter(assign_split(k, seed) for _, k in keys(10))
        if plain["dev"] == 0 or plain["test"] == 0:
            break
    split = split_documents(keys(10), seed=seed)
    assert split.dev and split.test and split.train
    assert sorted(split.train + split.dev + split.test) == list(range(10))
    assert any(n.code == "split_repaired" for n in split.notes)


def test_label_missing_from_dev_or_test_is_noted():
    items = keys(40)
    split = split_documents(items, seed=0)
    rare = split.train[0]
    labels = {i: {"COMMON"} for i, _ in items} | {rare: {"COMMON", "RARE"}}
    noted = split_documents(items, seed=0, labels=labels)
    assert [n.code for n in noted.notes] == ["label_missing"]
    assert "'RARE'" in noted.notes[0].message


@pytest.mark.parametrize(("dev", "test"), [(-0.1, 0.1), (0.1, 1.0), (0.3, 0.3), ("a", 0.1)])
def test_bad_ratios_are_refused_with_a_fix(dev, test):
    with pytest.raises(ReportLensError, match="dev_ratio|test_ratio"):
        split_documents(keys(20), dev_ratio=dev, test_ratio=test)


def test_duplicate_ids_are_refused():
    with pytest.raises(ReportLensError, match="twice"):
        split_documents([(1, "task:1"), (1, "task:2")])
