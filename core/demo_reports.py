"""The demo's synthetic report texts with their spans: English ECG, chest X-ray and chest CT reports built piece
by piece from seeded random choices (:func:`ecg_report`, :func:`chest_report`). :mod:`core.demo` turns them into the
demo project's Label Studio export.

The text is built piece by piece and every span's offsets are taken while it is appended (:class:`Report`), so each
span matches its text exactly and no two spans of a report overlap.

Labeling conventions, applied the same way everywhere:
- RHYTHM: the rhythm name ("Sinus bradycardia"); qualifiers such as "with rapid ventricular response" stay outside.
- HEART_RATE: number and unit ("72 bpm", "72/min"). INTERVAL: interval name, value and unit ("QTc 428 ms").
- FINDING: an abnormality ("right bundle branch block", "nodule", "pleural effusion"); normal statements ("Normal
  axis.", "Normal ECG.") and sizes/severity words ("2.1 cm", "Small", "Mild") are not labeled.
- ANATOMY: a body structure or lung region ("right upper lobe", "heart"); laterality words alone are not labeled.
- NEGATION: the cue ("No", "no", "No evidence of", "without"), not the negated finding (which is a FINDING).

ECG terms follow the PTB-XL SCP statements and the MCS ECG thesaurus (hardcoded here: the demo needs no data files).
"""

from __future__ import annotations

import random

# fmt: off
# (rhythm, lowest rate, highest rate, has P waves)
_RHYTHMS = [
    ("Sinus rhythm", 60, 99, True), ("Normal sinus rhythm", 60, 99, True), ("Sinus bradycardia", 38, 59, True),
    ("Sinus tachycardia", 101, 145, True), ("Sinus arrhythmia", 55, 95, True), ("Atrial fibrillation", 55, 150, False),
    ("Atrial flutter", 75, 150, False), ("Ectopic atrial rhythm", 55, 95, True), ("Junctional rhythm", 40, 60, False),
    ("Accelerated junctional rhythm", 61, 100, False), ("Ventricular paced rhythm", 60, 80, False),
    ("Atrial-paced rhythm", 60, 80, True), ("Supraventricular tachycardia", 150, 210, False),
]
_RHYTHM_WEIGHTS = [30, 10, 12, 10, 5, 12, 4, 3, 2, 2, 3, 2, 2]
# at most one term per group in a report, so findings never contradict each other
_ECG_FINDING_GROUPS = [
    ["first degree AV block", "right bundle branch block", "incomplete right bundle branch block",
     "left bundle branch block", "left anterior fascicular block", "left posterior fascicular block",
     "nonspecific intraventricular conduction delay"],
    ["left ventricular hypertrophy", "right ventricular hypertrophy", "left atrial enlargement",
     "right atrial enlargement", "low QRS voltage"],
    ["QT prolongation", "nonspecific ST-T wave changes", "early repolarization", "poor R wave progression"],
    ["old inferior infarct", "anteroseptal infarct"],
    ["premature ventricular complexes", "premature atrial complexes", "ventricular bigeminy"],
]
_LEAD_FINDINGS = ["T wave inversion", "ST depression", "ST elevation", "pathological Q waves"]
_LEADS = ["in leads V1-V3", "in leads V4-V6", "in the inferior leads", "in the lateral leads",
          "in leads II, III and aVF"]
# negatable finding -> words that, present in a positive finding or the rhythm, rule the negation out
_ECG_NEGATABLE = {
    "ST elevation": ("ST elevation", "early repolarization"), "ST depression": ("ST depression",),
    "acute ischemic changes": ("ST ", "T wave", "infarct"), "pathological Q waves": ("Q waves", "infarct"),
    "pre-excitation": ("pre-excitation",), "ventricular ectopy": ("ventricular", "bigeminy"),
    "AV block": ("AV block", "Junctional", "Atrial f", "paced"),
}
_NORMAL_RHYTHMS = ("Sinus rhythm", "Normal sinus rhythm")
_ECG_HEADERS = ["12-lead ECG", "Resting 12-lead electrocardiogram", "ECG interpretation", "Electrocardiogram"]
_LOBES = ["right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe", "lingula"]
_BASES = ["right lung base", "left lung base", "lung bases"]
_OPACITIES = ["consolidation", "airspace opacity", "ground-glass opacity"]
_INDICATIONS = ["Cough.", "Shortness of breath.", "Fever.", "Chest pain.", "Preoperative evaluation.", "Follow-up.",
                "Trauma.", "Hypoxia."]
_CXR_HEADERS = ["CHEST X-RAY, PA AND LATERAL", "CHEST RADIOGRAPH, PORTABLE AP", "EXAM: Chest X-ray, 2 views"]
_CT_HEADERS = ["CT CHEST WITH CONTRAST", "CT THORAX, CONTRAST-ENHANCED", "LOW-DOSE CT CHEST"]
# fmt: on


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class Report:
    """A text under construction; spans are recorded from the running length as pieces are appended."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[tuple[int, int, str, str]] = []  # start, end, label, the piece's own text

    def add(self, *pieces: str | tuple[str, str]) -> Report:
        for piece in pieces:
            text, label = piece if isinstance(piece, tuple) else (piece, None)
            if not text:
                continue
            if label:
                self.spans.append((self.length, self.length + len(text), label, text))
            self.parts.append(text)
            self.length += len(text)
        return self

    def sentence(self, *pieces: str | tuple[str, str]) -> Report:
        """Append pieces as one sentence, separated from the previous one by a space (not at a line start)."""
        if self.parts and not self.parts[-1].endswith(("\n", " ")):
            self.add(" ")
        return self.add(*pieces)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _rate(rng: random.Random, bpm: int) -> tuple[str, str]:
    return (rng.choices([f"{bpm} bpm", f"{bpm}/min", f"{bpm} beats per minute"], [6, 3, 1])[0], "HEART_RATE")


def _interval(rng: random.Random, name: str, ms: int) -> tuple[str, str]:
    unit = rng.choices(["ms", "msec"], [4, 1])[0]
    return (f"{name} {ms} {unit}", "INTERVAL")


def _negation(r: Report, rng: random.Random, pool: list[str]) -> None:
    """One negated sentence about one or two findings taken from ``pool`` (they are removed from it)."""
    first = pool.pop()
    style = rng.randrange(4)
    if style == 0 and pool:
        r.sentence(("No", "NEGATION"), " ", (first, "FINDING"), " or ", (pool.pop(), "FINDING"), ".")
    elif style == 1:
        verb = "There are " if first.endswith("s") else "There is "
        r.sentence(verb, ("no", "NEGATION"), " ", (first, "FINDING"), ".")
    elif style == 2:
        r.sentence(("No evidence of", "NEGATION"), " ", (first, "FINDING"), ".")
    else:
        r.sentence(("No", "NEGATION"), " ", (first, "FINDING"), ".")


def ecg_report(rng: random.Random) -> Report:
    r = Report()
    if rng.random() < 0.6:
        r.add(rng.choice(_ECG_HEADERS), ":\n")
    rhythm, low, high, p_waves = rng.choices(_RHYTHMS, _RHYTHM_WEIGHTS)[0]
    bpm = rng.randint(low, high)
    groups = rng.sample(_ECG_FINDING_GROUPS, rng.choices([0, 1, 2, 3], [3, 4, 3, 1])[0])
    needs_p = ("first degree AV block", "left atrial enlargement")
    findings = [f for f in (rng.choice(g) for g in groups) if p_waves or f not in needs_p]
    lead = (rng.choice(_LEAD_FINDINGS), rng.choice(_LEADS)) if rng.random() < 0.35 else None
    present = " ".join([rhythm, *findings, lead[0] if lead else ""])
    negatable = [f for f, clash in _ECG_NEGATABLE.items() if not any(c in present for c in clash)]
    rng.shuffle(negatable)

    response = ""
    if rhythm.startswith("Atrial f"):
        slow = rng.choice(["", " with controlled ventricular response"])
        response = " with rapid ventricular response" if bpm > 100 else slow
    style = rng.randrange(4)
    if style == 0:
        r.sentence((rhythm, "RHYTHM"), response, " at ", _rate(rng, bpm), ".")
    elif style == 1:
        r.sentence((rhythm, "RHYTHM"), response, ", rate ", _rate(rng, bpm), ".")
    elif style == 2:
        r.sentence("Rhythm: ", (rhythm, "RHYTHM"), response, ". Heart rate: ", _rate(rng, bpm), ".")
    else:
        r.sentence("Ventricular rate ", _rate(rng, bpm), ". ", (rhythm, "RHYTHM"), response)
        if negatable and rng.random() < 0.3:
            r.add(" ", ("without", "NEGATION"), " ", (negatable.pop(), "FINDING"))
        r.add(".")

    if rng.random() < 0.85:
        pr = rng.randint(210, 300) if "first degree AV block" in findings else rng.randint(120, 200)
        wide = any(f.endswith("bundle branch block") and "incomplete" not in f for f in findings)
        qrs = rng.randint(122, 170) if wide else rng.randint(70, 118)
        qtc = rng.randint(470, 520) if "QT prolongation" in findings else rng.randint(380, 455)
        measures = [(rng.choice(["PR interval", "PR"]), pr)] if p_waves else []
        measures += [(rng.choice(["QRS duration", "QRS"]), qrs), ("QTc", qtc)]
        pieces: list[str | tuple[str, str]] = ["Intervals: "] if rng.random() < 0.4 else []
        for i, (name, ms) in enumerate(measures):
            pieces += [", ", _interval(rng, name, ms)] if i else [_interval(rng, name, ms)]
        r.sentence(*pieces, ".")

    axis = rng.choices(["Normal axis", "Left axis deviation", "Right axis deviation", ""], [5, 2, 1, 4])[0]
    if axis == "Normal axis":
        r.sentence("Normal axis.")
    elif axis:
        r.sentence((axis, "FINDING"), ".")
    for finding in findings:
        frame = rng.randrange(3)
        if frame == 0:
            r.sentence((_cap(finding), "FINDING"), ".")
        else:
            r.sentence("Consistent with " if frame == 1 else "Possible ", (finding, "FINDING"), ".")
    if lead:
        r.sentence((lead[0], "FINDING"), " ", lead[1], ".")
    for _ in range(rng.choices([0, 1, 2], [2, 5, 2])[0]):
        if negatable:
            _negation(r, rng, negatable)
    abnormal = bool(findings or lead) or axis not in ("Normal axis", "") or rhythm not in _NORMAL_RHYTHMS
    if rng.random() < 0.7:
        r.sentence(
            rng.choice(["Abnormal ECG.", "Borderline ECG."] if abnormal else ["Normal ECG.", "Otherwise normal ECG."])
        )
    return r


def _size(rng: random.Random, mass: bool) -> str:
    if mass:
        return f"{rng.randint(30, 65) / 10:.1f} cm"
    return rng.choice([f"{rng.randint(4, 9)} mm", f"{rng.randint(10, 29) / 10:.1f} cm"])


def chest_report(rng: random.Random, ct: bool) -> Report:
    r = Report()
    header = rng.choice(_CT_HEADERS if ct else _CXR_HEADERS)
    r.add(header, "\n", rng.choice(["INDICATION: ", "CLINICAL HISTORY: "]), rng.choice(_INDICATIONS), "\n")
    if ct:
        r.add("TECHNIQUE: Axial images were obtained with ", rng.choice(["1 mm", "1.25 mm", "2.5 mm"]), " slices.\n")
    r.add("FINDINGS: ")
    impression: list[tuple[str, ...]] = []  # what the impression repeats
    lung = rng.choices(["clear", "nodule", "mass", "opacity", "atelectasis"], [5, 3, 1, 3, 2])[0]
    if lung in ("nodule", "mass"):
        kind = lung if lung == "mass" else rng.choice(["nodule", "pulmonary nodule", "spiculated nodule"])
        size, lobe = _size(rng, lung == "mass"), rng.choice(_LOBES)
        r.sentence("There is a ", size, " ", (kind, "FINDING"), " in the ", (lobe, "ANATOMY"), ".")
        impression.append(("lesion", size, kind, lobe))
    elif lung == "opacity":
        kind, lobe = rng.choice(_OPACITIES if ct else _OPACITIES[:2]), rng.choice(_LOBES)
        patchy = rng.random() < 0.4
        r.sentence(
            "Patchy " if patchy else "", (kind if patchy else _cap(kind), "FINDING"), " in the ", (lobe, "ANATOMY"), "."
        )
        impression.append(("opacity", kind, lobe))
    elif lung == "atelectasis":
        base = rng.choice(_BASES)
        r.sentence(
            rng.choice(["Linear", "Mild", "Subsegmental"]),
            " ",
            ("atelectasis", "FINDING"),
            " at the ",
            (base, "ANATOMY"),
            ".",
        )
    else:
        r.sentence("The ", ("lungs", "ANATOMY"), " are clear")
        if rng.random() < 0.5:
            r.add(" ", ("without", "NEGATION"), " ", ("focal consolidation", "FINDING"))
        r.add(".")
    effusion = rng.random() < 0.25
    if effusion:
        side = rng.choice(["right", "left", "bilateral"])
        word = "pleural effusions" if side == "bilateral" else "pleural effusion"
        r.sentence(rng.choice(["Small", "Moderate"]), f" {side} ", (word, "FINDING"), ".")
        impression.append(("effusion", word, side))
    negatives = ["pneumothorax", "pulmonary edema"] + ([] if effusion else ["pleural effusion"])
    rng.shuffle(negatives)
    _negation(r, rng, negatives)
    if rng.random() < 0.3:
        r.sentence(rng.choice(["Mild", "Moderate"]), " ", ("cardiomegaly", "FINDING"), ".")
        impression.append(("cardiomegaly",))
    elif rng.random() < 0.5:
        r.sentence("The ", ("heart", "ANATOMY"), " is normal in size.")
    else:
        r.sentence("The ", ("cardiomediastinal silhouette", "ANATOMY"), " is within normal limits.")
    if ct:
        for item in rng.sample(
            ["emphysema", "coronary artery calcifications", "hiatal hernia", "hepatic steatosis"], rng.randint(0, 2)
        ):
            if item == "emphysema":
                r.sentence(
                    rng.choice(["Mild", "Moderate"]),
                    " centrilobular ",
                    ("emphysema", "FINDING"),
                    " in the ",
                    ("upper lobes", "ANATOMY"),
                    ".",
                )
            elif item == "hiatal hernia":
                r.sentence("Small ", (item, "FINDING"), ".")
            else:
                r.sentence((_cap(item), "FINDING"), ".")
        mediastinal = ["lymphadenopathy", "pericardial effusion"] + (
            [] if "LOW-DOSE" in header else ["pulmonary embolism"]
        )
        rng.shuffle(mediastinal)
        _negation(r, rng, mediastinal)
    if rng.random() < 0.3:
        r.sentence(("Degenerative changes", "FINDING"), " of the ", ("thoracic spine", "ANATOMY"), ".")

    r.add("\nIMPRESSION:", "\n" if len(impression) > 1 else " ")
    if not impression:
        finding = rng.choice(["acute cardiopulmonary process", "acute cardiopulmonary abnormality"])
        r.add(("No", "NEGATION"), " ", (finding, "FINDING"), ".")
    for number, item in enumerate(impression, start=1):
        if len(impression) > 1:
            r.add("\n" if number > 1 else "", f"{number}. ")
        if item[0] == "lesion":
            _, size, kind, lobe = item
            advice = rng.choice(["Recommend follow-up CT.", "Recommend comparison with prior imaging."])
            r.add(f"{size} ", (lobe, "ANATOMY"), " ", (kind, "FINDING"), ". ", advice)
        elif item[0] == "opacity":
            _, kind, lobe = item
            r.add((_cap(kind), "FINDING"), " in the ", (lobe, "ANATOMY"), ", ")
            r.add(rng.choice(["compatible with ", "concerning for "]), ("pneumonia", "FINDING"), ".")
        elif item[0] == "effusion":
            r.add(_cap(item[2]) + " ", (item[1], "FINDING"), ".")
        else:
            r.add(("Cardiomegaly", "FINDING"), ".")
    return r
