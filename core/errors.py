"""The catalogue of issue codes: every problem an import, a conversion or the alignment reports (spaCy-style).

Each :class:`IssueCode` member is one condition, with its default level, a message template (formatted with named
fields by :meth:`IssueCode.msg`) and a one-line doc: what it means and how to fix it. Stored issues keep the code's
string value, so summaries written before the catalogue still read; codes that were merged into one member keep
reading through :data:`LEGACY_CODES`. ``docs/issue-codes.md`` is generated from this module
(``python scripts/issue_codes.py``).

Levels: ``error`` (the item or span was skipped), ``warning`` (it was repaired or a policy applied), ``info`` (a fact
worth knowing). A few codes are raised at another level where the same condition has a milder outcome (a CoNLL line
that is read anyway is a ``warning``).
"""

from __future__ import annotations

import string
from enum import StrEnum
from typing import Any, Literal

IssueLevel = Literal["error", "warning", "info"]


class IssueCode(StrEnum):
    """One member per condition: ``IssueCode.OFFSET_MISMATCH.msg(where=..., start=..., ...)``."""

    level: IssueLevel
    template: str
    doc: str

    def __new__(cls, value: str, level: IssueLevel, template: str, doc: str) -> IssueCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.level, member.template, member.doc = level, template, doc
        return member

    # ------------------------------------------------------------ span offsets (Label Studio, brat, the importer)
    OFFSET_NOT_INTEGER = (
        "offset_not_integer", "error",
        "{where}: span ({start!r}, {end!r}, {label!r}) has offsets that are not integers; span skipped. {fix}",
        "A span's start or end is not a whole number; the span is skipped. Redraw the region or fix the offsets.")
    EMPTY_SPAN = (
        "empty_span", "error",
        "{where}: span ({start}, {end}, {label!r}) is empty or reversed (start must be < end); span skipped. {fix}",
        "A span ends where (or before) it starts; it is skipped. Delete or redraw the region.")
    OFFSET_OUT_OF_RANGE = (
        "offset_out_of_range", "error",
        "{where}: span ({start}, {end}, {label!r}) lies outside the text (length {length}); span skipped. {fix}",
        "A span's offsets point outside its document's text (often an annotation of another version of the text); "
        "it is skipped. Fix the offsets, or check the annotations belong to this text.")
    OFFSET_TRIMMED = (
        "offset_trimmed", "warning",
        "{where}: span ({start}, {end}, {label!r}) text {wanted!r} does not match the document at those offsets "
        "({found!r}), only in leading/trailing whitespace; trimmed to ({new_start}, {new_end}).",
        "A span's text differs from the document only by surrounding whitespace; the offsets were trimmed. Nothing "
        "to do, or tighten the region.")
    OFFSET_REPAIRED = (
        "offset_repaired", "warning",
        "{where}: span ({start}, {end}, {label!r}) text {wanted!r} does not match the document at those offsets "
        "({found!r}); re-anchored to ({new_start}, {new_end}) by {how}.",
        "A span's text was found near (not at) its offsets, or at its offsets counted in UTF-16; the offsets were "
        "moved there. Check the span; re-export if the text was edited after labelling.")
    OFFSET_MISMATCH = (
        "offset_mismatch", "error",
        "{where}: span ({start}, {end}, {label!r}) text {wanted!r} does not match the document at those offsets "
        "({found!r}), and that text was not found within {window} characters; span skipped. {fix}",
        "A span's text is neither at its offsets nor nearby; it is skipped. Fix the region (the text may have been "
        "edited after labelling) and export again.")
    # ------------------------------------------------------------ labels and regions
    UNKNOWN_LABEL = (
        "unknown_label", "error",
        "{task}: {what} has label {label!r}, which is not in the labeling config ({kind} labels: {known}); {kind} "
        "skipped. Add {label!r} to the <{control}> of the labeling config, or fix the {kind} where it was annotated.",
        "A span or choice label is not in the labeling config; it is skipped. Add the label to the config or fix "
        "the annotation.")
    MISSING_LABEL = (
        "missing_label", "error",
        "{task}: region ({start!r}, {end!r}) has no usable label (labels={labels!r}); span skipped. Pick a label "
        "for the region in Label Studio.",
        "A region has no label (or labels that are not text); it is skipped. Pick a label for it in Label Studio.")
    DUPLICATE_SPAN = (
        "duplicate_span", "info",
        "{task}: {where} has {n} duplicate span(s), e.g. {example}; kept one of each.",
        "One annotation holds the same span (offsets and label) more than once; one copy is kept. Nothing to do.")
    OVERLAP = (
        "overlap", "warning",
        "{where}: {span_text} {relation} {other}; BIO cannot hold both, so the longer span is used for training (both "
        "stay in the database). Split the annotation in Label Studio if both matter.",
        "Two spans overlap; BIO tags hold one, so the longer trains and both stay stored. Split the annotation if "
        "both matter.")
    PARTIAL_TOKEN = (
        "partial_token", "warning",
        "{where}: {span_text} {edge} inside token {token!r} ({token_start}-{token_end}); {action}.",
        "A span edge falls inside a token; the span was expanded to (or shrunk to) token boundaries, as "
        "partial_token says. Fix the edge in Label Studio or keep the adjusted span.")
    SPAN_WITHOUT_TOKENS = (
        "span_without_tokens", "error",
        "{where}: {span_text} {reason}, so it cannot be tagged; {fix}.",
        "A span covers no whole token (only whitespace, characters the tokenizer drops, or part of one token "
        "under partial_token='shrink'); it gets no tags. Widen or delete the span, or use partial_token='expand'.")
    ORPHAN_INSIDE = (
        "orphan_inside", "warning",
        "{task} (line {line}): {n} entities begin with 'I-' without a 'B-' before them, e.g. span ({start}, {end}, "
        "{label!r}) {text!r}; each was read as the start of an entity. Check the tags if that is wrong.",
        "CoNLL entities start with I- and no B-; each is read as a new entity. Check the tagging scheme.")
    DISCONTINUOUS = (
        "discontinuous", "warning",
        "{where}: discontinuous {label} entity split into {n} spans ({ranges}).",
        "A brat entity has several fragments; each fragment became its own span. Nothing to do, or join them.")
    # ------------------------------------------------------------ tasks and their text
    MISSING_DATA = (
        "missing_data", "error",
        "{task}: the task has no 'data' object (keys: {keys}); task skipped. Each task of a Label Studio JSON "
        "export keeps its text in data; export again with the JSON format.",
        "A task has no data object, so no text; it is skipped. Export the project again in Label Studio's JSON "
        "format.")
    MISSING_TEXT_FIELD = (
        "missing_text_field", "error",
        "{task}: {problem}; task skipped. ReportLens imports plain-text tasks: pass the labeling config whose "
        '<Text value="$field"> names the report text field.',
        "A task has no text under the expected field (or it is not text); it is skipped. Pass the labeling config "
        "that names the text field.")
    EMPTY_TEXT = (
        "empty_text", "error",
        "{task}: the text in data[{field!r}] is empty; task skipped. Fill in the report text or remove the task in "
        "Label Studio.",
        "A task's report text is empty or whitespace; it is skipped. Fill in the text or remove the task.")
    TEXT_FIELD_GUESSED = (
        "text_field_guessed", "info",
        "{task}: the task data has no 'text' field; reading the text from {field!r}, its only string field, for "
        'the whole file. Pass the labeling config (<Text value="${field}">) to choose it explicitly.',
        "Without a labeling config, the text was read from the only string field. Pass the config to choose it.")
    NOT_A_TASK = (
        "not_a_task", "error",
        "{task} is {kind} ({value}), not a task object; skipped. Remove it from the file.",
        "An item of the export list is not a task object; it is skipped. Remove it from the file.")
    SINGLE_TASK = (
        "single_task", "info",
        "{file} holds one task object, not a list; read it as one task.",
        "The file holds one task object instead of a list; it was read as one task. Nothing to do.")
    NO_TASKS = (
        "no_tasks", "warning",
        "The export holds no tasks; check that the right project was exported.",
        "The file holds no tasks. Check that the right project was exported.")
    DUPLICATE_TASK = (
        "duplicate_task", "warning",
        "{task}: {what} appears more than once in this file; the last one is kept.",
        "The same task (id, or text without an id) appears twice in one file; the last copy is kept. Remove the "
        "duplicate.")
    TEXT_CHANGED = (
        "text_changed", "warning",
        "{task} (document #{document_id}, source {source_key!r}): this file changes the text of the stored report; "
        "the new text is stored and its {n} earlier annotation(s) are kept, flagged stale (they never train). To "
        "undo, import the earlier export again with the same source; if this is another report, import it with "
        "its own source name (--source NAME, or 'Source name' on the Import page).",
        "A re-import from the same source (Label Studio instance and project, or the source name given) changed a "
        "document's text. The new text is stored, the earlier annotations are kept and flagged stale (they never "
        "train), and the summary lists the document. Undo: import the earlier export again. If two different "
        "reports share a task id (two Label Studio projects or servers), import each with its own source name. "
        "Strict mode refuses such an import.")
    TEXT_KEY_KEPT = (
        "text_key_kept", "warning",
        "{file}: its tasks hold the report text in data[{file_key!r}], this project's in data[{project_key!r}]. "
        "The reports were read from data[{file_key!r}]; the project keeps data[{project_key!r}] (pushes to Label "
        "Studio and exports write the text there). If the file belongs to another Label Studio project, import it "
        "into a ReportLens project of its own.",
        "The file's text key (the labeling config's <Text value=\"$key\">, or the one data field) differs from the "
        "project's. The file is read with its own key; the project keeps its key, so pushes and exports stay "
        "readable by its Label Studio project. Nothing to fix when the file belongs to this project; otherwise "
        "import it into a project of its own.")
    INVALID_TASK_ID = (
        "invalid_task_id", "error",
        "{task}: the task id {value} is not a task id ({problem}); task skipped. Task ids are whole numbers from "
        "0 to 2**63-1 (3.0 is read as 3); fix the id, or remove it to key the task by its text.",
        "A task's id is not a whole number from 0 to 2**63-1 (a boolean, a padded or signed string, a fraction, a "
        "list...). The task is skipped rather than stored under a guessed identity. Fix the id in the file, or "
        "remove it so that the task is keyed by its text.")
    # ------------------------------------------------------------ annotation structure
    BAD_ANNOTATION = (
        "bad_annotation", "error",
        "{task}: {what} is {kind}, not {expected}; skipped. Re-export the project from Label Studio.",
        "A task's annotations (or one annotation or prediction) are not the JSON objects Label Studio writes; "
        "they are skipped. Re-export the project.")
    BAD_RESULT = (
        "bad_result", "error",
        "{task}: {where} has a 'result' of type {kind}, not a list; its labels were skipped. Re-export the task "
        "from Label Studio.",
        "An annotation's result is not a list; its labels are skipped. Re-export the task.")
    UNKNOWN_SOURCE = (
        "unknown_source", "error",
        "{task}: annotation source {source!r} is not one of {known}; it was skipped.",
        "An annotation's source is not human, model, rule or review (a reader bug); it is skipped. Report it.")
    IGNORED_RESULTS = (
        "ignored_results", "info",
        "Ignored {n} results that ReportLens does not import ({counts}){where}. Only {imported} are read.",
        "Annotation results of kinds ReportLens does not import (relations, rectangles, brat events...) were "
        "counted and left out. Nothing to do.")
    PREDICTION_IDS_SKIPPED = (
        "prediction_ids_skipped", "info",
        "{n} predictions are listed only by id (as the Label Studio API export writes them), so they were "
        "skipped; export from the Label Studio UI to import model predictions.",
        "Predictions given only as ids carry no regions; they are skipped. Export from the Label Studio UI.")
    INFERRED_CONFIG = (
        "inferred_config", "info",
        "No labeling config given: inferred {n_spans} span labels ({spans}) and {n_choices} choice labels "
        "({choices}) from the results; pass --config to check labels.",
        "Without a labeling config the label set was read from the results. Pass the config to check labels.")
    JSON_MIN_STRINGS = (
        "json_min_strings", "info",
        "JSON-MIN without a labeling config: string fields ({fields}) were kept as task metadata, because a "
        "single choice looks like any other text; pass --config to read <Choices> fields as document labels.",
        "JSON-MIN string fields were kept as metadata, not choices. Pass the labeling config to read choices.")
    # ------------------------------------------------------------ files (brat, CoNLL, DICOM, zip archives)
    BAD_LINE = (
        "bad_line", "error",
        "{where}: cannot read {line!r} as {expected}; {outcome}. Fix the line or remove it.",
        "A line of an annotation file (brat .ann, CoNLL) is not in the format's layout; it is skipped (brat) or "
        "read as an untagged token (CoNLL). Fix or remove the line.")
    FILE_UNREADABLE = (
        "file_unreadable", "error",
        "{where} {problem}; skipped. {fix}",
        "A file of a batch (or the archive, or a member of it) cannot be read: not UTF-8 text, not parseable DICOM, "
        "encrypted or damaged zip. It is skipped. Re-save or re-export it.")
    FILE_TOO_LARGE = (
        "file_too_large", "error",
        "{where} is {size}, over the {limit} limit for {scope}; {skipped} skipped. Leave out files that are not "
        "reports (images), or split the archive.",
        "A zip member, or the whole archive unpacked, is over the size limit; it is skipped. Leave out the images "
        "or split the archive.")
    BRAT_MISSING_TEXT = (
        "brat_missing_text", "error",
        "{ann} in {where} has no {stem} beside it, so its annotations have no text; skipped. Add the .txt the "
        "annotations were made on (same name, same folder), or remove the .ann.",
        "A brat .ann has no .txt of the same name; it is skipped. Add the .txt or remove the .ann.")
    BRAT_UNANNOTATED = (
        "brat_unannotated", "info",
        "{n} .txt file(s) in {where} have no .ann beside them and were imported unlabelled: {names}.",
        "brat .txt files without an .ann were imported as unlabelled reports. Add the .ann files if they exist.")
    CONLL_LAYOUT = (
        "conll_layout", "info",
        "CoNLL file with {docstarts} -DOCSTART- line(s): {how}. Texts are rebuilt by joining tokens with single "
        "spaces; prefer the JSON export, which keeps the original text and character offsets.{io}",
        "How a CoNLL file was split into tasks and its texts rebuilt. Prefer the JSON export for exact texts.")
    DICOM_NO_TEXT = (
        "dicom_no_text", "error",
        "{where} ({sop_class}) has no report text: {why}. {fix}",
        "A DICOM object holds no report text (an image, or an SR without TEXT/CODE/NUM items); it is skipped. "
        "Import the study's Structured Report.")
    DICOM_SKIPPED_FILES = (
        "dicom_skipped_files", "info",
        "{n} file(s) in {where} hold no report (no 'DICM' preamble, or a DICOMDIR index) and were skipped: {names}.",
        "Files of a DICOM folder or zip that are not DICOM (or are DICOMDIR indexes) were skipped. Nothing to do.")
    # ------------------------------------------------------------ hostile input (core/limits.py)
    LIMIT_EXCEEDED = (
        "limit_exceeded", "error",
        "{where}: {what} has {size}, over the limit of {limit} ({env} raises it); {outcome}. {fix}",
        "A task's text, its spans, or a zip's members are over a named limit (README \"Limits\"); the item is "
        "skipped. Split the item, or raise the limit with its REPORTLENS_MAX_... variable.")
    LONE_SURROGATE = (
        "lone_surrogate", "warning",
        "{file}: {n} escape(s) of half a UTF-16 surrogate pair (e.g. {example} at line {line}), as a JavaScript "
        "string cut inside an emoji writes them, were read as U+FFFD (the replacement character, one character, so "
        "offsets stay). Fix the text in Label Studio if the character matters.",
        "A JSON string holds \\uD800-\\uDFFF without its other half; it is read as U+FFFD so the offsets of the "
        "task stay right. Fix the text if the character matters.")

    # ------------------------------------------------------------ people and roles (core/auth.py)
    FORBIDDEN = (
        "forbidden", "error",
        "{who} may not {what}{where}: that needs the {roles} role. {fix}",
        "A person asked for something their roles do not allow (README \"People, roles and audit\"); nothing was "
        "done and the refusal is in the audit trail. An admin grants roles on the Users page or with cli.py users "
        "grant.")

    @classmethod
    def _missing_(cls, value: object) -> IssueCode | None:
        return _LEGACY.get(value) if isinstance(value, str) else None

    @classmethod
    def lookup(cls, value: str) -> IssueCode | str:
        """The member for a stored code (merged legacy names included); an unknown code stays a plain string."""
        try:
            return cls(value)
        except ValueError:
            return value

    @property
    def fields(self) -> tuple[str, ...]:
        """The named fields of the message template, in order of first use."""
        names = (f for _, f, _, _ in string.Formatter().parse(self.template) if f)
        return tuple(dict.fromkeys(names))

    def msg(self, **fields: Any) -> str:
        """The message, formatted from the template; extra fields are ignored, a missing one raises."""
        try:
            return self.template.format(**fields)
        except KeyError as exc:
            raise TypeError(f"IssueCode.{self.name}.msg() needs the field {exc} (fields: {self.fields}).") from exc


# Codes merged into one member; old stored summaries read them as the new member (IssueCode("bad_offsets")).
_LEGACY: dict[str, IssueCode] = {
    "conll_bad_line": IssueCode.BAD_LINE,
    "span_out_of_range": IssueCode.OFFSET_OUT_OF_RANGE,
    "bad_offsets": IssueCode.OFFSET_NOT_INTEGER,
    "brat_unreadable": IssueCode.FILE_UNREADABLE,
    "dicom_unreadable": IssueCode.FILE_UNREADABLE,
    "brat_too_large": IssueCode.FILE_TOO_LARGE,
    "dicom_too_large": IssueCode.FILE_TOO_LARGE,
    "ignored_annotations": IssueCode.IGNORED_RESULTS,
    "stale_offsets": IssueCode.TEXT_CHANGED,
}
LEGACY_CODES: dict[str, IssueCode] = dict(_LEGACY)


def catalogue_markdown() -> str:
    """``docs/issue-codes.md``: every code with its level, meaning and message template, and the legacy names."""
    lines = [
        "# Issue codes",
        "",
        "Generated from `core/errors.py` by `python scripts/issue_codes.py`; do not edit by hand.",
        "",
        "Every problem an import, a conversion or the alignment reports carries one of these codes (the `code`",
        "column of the Import page's issues table and of `cli.py import` / `convert` summaries). Levels: **error**",
        "(the item or span was skipped), **warning** (it was repaired or a policy applied), **info** (a fact worth",
        "knowing).",
        "",
        "| code | level | meaning and fix | message |",
        "|---|---|---|---|",
    ]
    for code in IssueCode:
        template = code.template.replace("|", "\\|")
        lines.append(f"| `{code.value}` | {code.level} | {code.doc} | `{template}` |")
    lines += ["", "## Former codes", "", "Stored summaries that use these names read as the code they were merged "
              "into.", "", "| former code | now |", "|---|---|"]
    lines += [f"| `{old}` | `{new.value}` |" for old, new in LEGACY_CODES.items()]
    return "\n".join(lines) + "\n"
