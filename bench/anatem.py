"""AnatEM (../shared/data/anatem: train/devel/test.tsv, ``token<TAB>tag``, IOB, one type ``Anatomy``) for the benches.

Sentences are read as the files give them. For ReportLens, consecutive sentences of one file are grouped into
documents of ``sents_per_doc`` sentences (text = the tokens joined by single spaces, the data README's rebuild, so
character offsets are those of that text); each document gets a Label Studio-like task id that says which official
file it came from (:data:`TASK_ID_BASE`), so the official split can be handed to ``fit(..., split=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FILES = {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}
TASK_ID_BASE = {"train": 1_000_000, "dev": 2_000_000, "test": 3_000_000}
LABEL = "Anatomy"

Sentence = list[tuple[str, str]]  # (token, tag)


def data_dir() -> Path:
    from tests.shared_data import SHARED_DATA

    return SHARED_DATA / "anatem"


def read_sentences(path: Path, limit: int | None = None) -> list[Sentence]:
    """The sentences of one file (blank-line separated ``token<TAB>tag`` lines), the first ``limit`` only."""
    out: list[Sentence] = []
    current: Sentence = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                if current:
                    out.append(current)
                    current = []
                    if limit is not None and len(out) >= limit:
                        return out
                continue
            cols = line.split("\t")
            current.append((cols[0], cols[-1]))
    if current and (limit is None or len(out) < limit):
        out.append(current)
    return out


def official_sentences(max_sentences: int | None = None, root: Path | None = None) -> dict[str, list[Sentence]]:
    """``{"train": [...], "dev": [...], "test": [...]}``, each capped at ``max_sentences``."""
    root = root or data_dir()
    return {split: read_sentences(root / name, max_sentences) for split, name in FILES.items()}


def count_entities(sentences: Iterable[Sentence]) -> int:
    """Entities as seqeval strict IOB2 counts them: a ``B-`` tag starts one (AnatEM has no ``I-`` after ``O``)."""
    from seqeval.scheme import IOB2, Entities

    tags = [[t for _, t in s] for s in sentences]
    return sum(len(e) for e in Entities(tags, IOB2).entities)


def group_documents(sentences: Sequence[Sentence], sents_per_doc: int) -> list[list[Sentence]]:
    return [list(sentences[i:i + sents_per_doc]) for i in range(0, len(sentences), sents_per_doc)]


def document_task(split: str, index: int, sentences: Sequence[Sentence]) -> Any:
    """One ReportLens task: the sentences' tokens joined by single spaces, the IOB tags turned into character spans
    (:func:`core.formats.conll.tags_to_spans`, no entity across a sentence start)."""
    from core.formats.conll import tags_to_spans
    from core.types import Annotation, ParsedTask, Span

    tokens = [tok for s in sentences for tok, _ in s]
    tags = [tag for s in sentences for _, tag in s]
    breaks, pos = set(), 0
    for s in sentences:
        breaks.add(pos)
        pos += len(s)
    offsets, at = [], 0
    for tok in tokens:
        offsets.append((at, at + len(tok)))
        at += len(tok) + 1
    text = " ".join(tokens)
    spans, _orphans = tags_to_spans(offsets, tags, breaks)
    return ParsedTask(text=text, task_id=TASK_ID_BASE[split] + index, position=index,
                      meta={"anatem_split": split, "sentences": len(sentences)},
                      annotations=(Annotation(source="human", spans=tuple(Span(a, b, lab) for a, b, lab in spans),
                                              author="AnatEM"),))


def documents(max_docs: int | None = None, sents_per_doc: int = 10, root: Path | None = None) -> dict[str, list]:
    """The official splits as ReportLens tasks (``max_docs`` per split at most)."""
    cap = None if max_docs is None else max_docs * sents_per_doc
    return {split: [document_task(split, i, group) for i, group in enumerate(group_documents(sents, sents_per_doc))]
            for split, sents in official_sentences(cap, root).items()}


def split_of(task_id: int | None) -> str:
    for split, base in sorted(TASK_ID_BASE.items(), key=lambda kv: -kv[1]):
        if task_id is not None and task_id >= base:
            return split
    raise ValueError(f"task id {task_id!r} is not an AnatEM bench task")


def official_split(docs: Sequence[Any]) -> Any:
    """The ``DocumentSplit`` of the project's documents by the file each came from (``meta["ls_task_id"]``)."""
    from core.split import DocumentSplit

    where = {d.id: split_of(d.meta.get("ls_task_id")) for d in docs}
    return DocumentSplit(**{name: tuple(i for i, s in where.items() if s == name) for name in ("train", "dev", "test")})


def make_anatem(url: str, max_docs: int | None = None, sents_per_doc: int = 10) -> dict[str, int]:
    """Import the AnatEM documents into project ``anatem`` of ``url`` (migrated by the caller); document counts."""
    from db.engine import make_engine
    from db.importer import import_tasks

    by_split = documents(max_docs, sents_per_doc)
    tasks = [t for split in ("train", "dev", "test") for t in by_split[split]]
    import_tasks(make_engine(url), "anatem", tasks, source="conll")
    return {split: len(ts) for split, ts in by_split.items()}
