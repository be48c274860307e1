"""Holter summaries (24-hour ECG recordings), English and Chinese: events, counts, times, durations, RR intervals,
and the context that ties them together (:func:`link_context`).

Candidates (:func:`holter_candidates`, added to :func:`core.rules.ecg.extract_ecg`'s):

- ``EVENT``: an arrhythmia event of a recording: premature beats ("PVCs", "房性早搏") when a count is attached
  ("126 PVCs", "PVCs: 126", "房性早搏 126 次") or a negation cue stands right before ("未见室性早搏", "no PVCs");
  runs, couplets and pauses always ("短阵房性心动过速", "3 runs of SVT", "成对室早", "停搏", "pauses"). attrs
  ``event`` (:data:`EVENTS`: PAC, PVC, atrial_couplet, ventricular_couplet, atrial_run, ventricular_run, pause) and
  ``concept``. Without a count or cue a premature beat is a statement of the lexicon (a diagnosis: "诊断：房性早搏").
- ``COUNT``: a count, number and unit ("126 次", "2 阵", "3 对", "8 个心搏", "98,562 beats"; "126" before "PVCs").
  attrs ``measure="count"``, ``value``, ``unit`` (beats, runs, couplets, times).
- ``TIME``: a clock time ("03:12", "14:35:20", "3:12 AM" -> "03:12", "03时12分") with ``measure="time"`` and
  ``time`` "HH:MM[:SS]"; or a duration after "持续 / 历时 / 最长 / lasting / longest" or as hours and minutes
  ("19 秒", "12 min", "23 小时 41 分", "23 h 41 min") with ``measure="duration"``, ``value`` in ms, ``unit`` "ms".
- ``RR_INTERVAL``: "RR 间期 2.1 秒", "R-R interval 2100 ms", "RR=800ms": name, value and unit; ``measure="RR"``,
  ``value`` in ms.
- ``AMPLITUDE``: "0.1 mV", "0.15毫伏" (an ST shift, a voltage): ``measure="amplitude"``, ``value`` in mV.

:func:`link_context` then reads each entity's neighbourhood, whatever its label (rule or model entities; it looks
at ``measure`` / ``event``): a heart rate or RR interval gets ``stat`` (mean / min / max) from the words before it
("平均心率", "最慢心率", "min", "longest"); an event gets the ``count``, ``duration_ms``, ``longest_ms``,
``longest_run_beats`` and ``time`` that follow it in its sentence, a heart rate or RR interval its ``time``; a count
after "总心搏数" / "total beats" gets ``of="total_beats"``. Linear: one pass over the sorted entities.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from core.types import Entity

EVENTS = ("PAC", "PVC", "atrial_couplet", "ventricular_couplet", "atrial_run", "ventricular_run", "pause")
EVENT_CONCEPTS = {"PAC": "premature atrial complexes", "PVC": "premature ventricular complexes",
                  "atrial_couplet": "atrial couplets", "ventricular_couplet": "ventricular couplets",
                  "atrial_run": "runs of atrial tachycardia", "ventricular_run": "runs of ventricular tachycardia",
                  "pause": "pauses"}
# lexicon concepts that name an event when a count or time is linked to them (a model's "房性早搏")
CONCEPT_EVENTS = {"premature atrial complexes": "PAC", "premature ventricular complexes": "PVC"}
_SCP = {"PAC": "PAC", "PVC": "PVC"}  # PTB-XL SCP codes, as the lexicon gives them
_COUNTED = ("PAC", "PVC")  # events only with a count or a negation cue (English pauses too); the others always

_LATIN = "A-Za-zÀ-ÖØ-öø-ÿ"
_ZH_EVENTS = {
    "PAC": ("房性早搏", "房性期前收缩", "房早", "室上性早搏", "房性早博"),
    "PVC": ("室性早搏", "室性期前收缩", "室早", "室性早博"),
    "atrial_couplet": ("成对房性早搏", "成对房早", "房早成对", "成对室上性早搏"),
    "ventricular_couplet": ("成对室性早搏", "成对室早", "室早成对"),
    "atrial_run": ("短阵房性心动过速", "短阵房速", "短阵室上性心动过速", "短阵室上速", "阵发性房性心动过速"),
    "ventricular_run": ("短阵室性心动过速", "短阵室速", "非持续性室性心动过速", "非持续性室速"),
    "pause": ("窦性停搏", "停搏", "长间歇", "长RR间歇"),
}
_EN_EVENTS = {
    "PAC": (r"PACs?", r"APCs?", r"SVEs?", r"SVPBs?", r"premature\s+atrial\s+(?:beats?|contractions?|complex(?:es)?)",
            r"atrial\s+premature\s+(?:beats?|contractions?|complex(?:es)?)", r"supraventricular\s+ectopic\s+beats?",
            r"supraventricular\s+ectopics?", r"atrial\s+ectopics?"),
    "PVC": (r"PVCs?", r"VPBs?", r"VEs?", r"premature\s+ventricular\s+(?:beats?|contractions?|complex(?:es)?)",
            r"ventricular\s+premature\s+(?:beats?|contractions?|complex(?:es)?)", r"ventricular\s+ectopic\s+beats?",
            r"ventricular\s+ectopics?"),
    "atrial_couplet": (r"atrial\s+couplets?", r"supraventricular\s+couplets?", r"SVE\s+couplets?"),
    "ventricular_couplet": (r"ventricular\s+couplets?", r"VE\s+couplets?", r"PVC\s+couplets?"),
    "atrial_run": (r"runs?\s+of\s+(?:SVT|PSVT|atrial\s+tachycardia|supraventricular\s+tachycardia)", r"SVT\s+runs?",
                   r"atrial\s+runs?", r"supraventricular\s+runs?"),
    "ventricular_run": (r"runs?\s+of\s+(?:NSVT|VT|ventricular\s+tachycardia)", r"NSVT", r"VT\s+runs?",
                        r"ventricular\s+runs?"),
    "pause": (r"sinus\s+pauses?", r"sinus\s+arrests?", r"pauses?"),
}


def _event_pattern() -> tuple[re.Pattern[str], list[str]]:
    """One regex for every event form, longest first, grouped by first character behind a lookahead (as the
    lexicon's: one group tried per position, not every form; 10x faster on text without events)."""
    forms: list[tuple[int, str, str, str]] = []  # length, first character, pattern, event
    for event, zh in _ZH_EVENTS.items():
        forms += [(len(f), f[0], re.escape(f), event) for f in zh]
    for event, en in _EN_EVENTS.items():
        for f in en:
            body = f"(?-i:{f})" if re.fullmatch(r"[A-Z]+s\?|[A-Z]+", f) else f  # "VEs", never "ves"
            forms.append((len(f), f[0].lower(), rf"(?<![{_LATIN}]){body}(?![{_LATIN}])", event))
    groups: dict[str, list[tuple[int, str, str]]] = {}
    for length, first, pattern, event in sorted(forms, key=lambda f: -f[0]):
        groups.setdefault(first, []).append((length, pattern, event))
    events: list[str] = []
    alts = []
    for first, items in groups.items():
        inner = []
        for _, pattern, event in items:
            inner.append(f"(?P<e{len(events)}>{pattern})")
            events.append(event)
        ahead = f"[{re.escape(first)}{re.escape(first.upper())}]" if first.isascii() else re.escape(first)
        alts.append(f"(?={ahead})(?:{'|'.join(inner)})")
    return re.compile("|".join(alts), re.I), events


_EVENT_RE, _EVENT_OF = _event_pattern()
_PAUSE_AFTER = re.compile(r"\s*(?:[:：=]|of|was|lasting)?\s*(?P<v>\d+(?:[.,]\d+)?)\s*"
                          r"(?P<unit>s|sec|seconds?|ms|msec)\b", re.I)
_LONGEST_BEFORE = re.compile(r"(?:longest|maximum|max\.?|最长)\s*$", re.I)
_NEG_BEFORE = re.compile(r"(?:未见|未发现|无|没有|\bno\b|\bwithout\b|\bnegative for\b)\s*(?:明显)?\s*$", re.I)

_BIG = r"\d{1,3}(?:,\d{3})+|\d+"
_COUNT_UNITS = {"次": "times", "阵": "runs", "对": "couplets", "个心搏": "beats", "个QRS波": "beats", "beats": "beats",
                "beat": "beats", "runs": "runs", "run": "runs", "couplets": "couplets", "couplet": "couplets",
                "episodes": "runs", "episode": "runs", "times": "times"}
_COUNT = re.compile(rf"(?<![\d.,:])(?P<n>{_BIG})\s*(?P<unit>个心搏|个QRS波|次(?!\s*/)|阵|对|"
                    rf"(?<![{_LATIN}])(?:beats?|runs?|couplets?|episodes?|times)(?![{_LATIN}]))", re.I)
_COUNT_AFTER = re.compile(rf"(?:[ \t\u3000]|[:：=]|共计|共|总数|总计|计|为|of)*(?P<n>{_BIG})(?!\d|[.,:]\d)"
                          rf"(?:\s*(?P<unit>个心搏|次(?!\s*/)|阵|对))?", re.I)
_COUNT_BEFORE = re.compile(rf"(?<![\d.,:])(?P<n>{_BIG})[ \t\u3000]*$")  # never a list number on the line before

_CLOCK = re.compile(rf"(?<![\d:.])(?P<h>[01]?\d|2[0-3])(?P<sep>:|：|时)(?P<m>[0-5]\d)(?:(?:[:：]|分)(?P<s>[0-5]\d)秒?"
                    rf"|分)?(?![\d:])(?:\s*(?P<ampm>[AaPp][Mm](?![{_LATIN}])|[AaPp]\.[Mm]\.))?")
_DURATION_KEY = r"(?:持续(?:时间)?|历时|共持续|最长(?:一阵)?|时长|lasting|lasted|longest|duration\s+of)"
_TIME_UNITS = {"ms": 1, "msec": 1, "毫秒": 1, "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
               "秒": 1000, "秒钟": 1000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
               "分钟": 60_000, "分": 60_000, "h": 3_600_000, "hr": 3_600_000, "hrs": 3_600_000, "hour": 3_600_000,
               "hours": 3_600_000, "小时": 3_600_000}
_DURATION = re.compile(
    rf"(?P<key>{_DURATION_KEY})(?:\s|[:：=]|为|约|about)*(?P<v>\d+(?:\.\d+)?|{_BIG})\s*"
    rf"(?P<unit>毫秒|秒钟|秒|分钟|小时|(?:ms|msec|secs?|seconds?|mins?|minutes?|hrs?|hours?|s|h)(?![{_LATIN}]))",
    re.I)
_HOURS = re.compile(rf"(?<![\d.])(?P<h>\d{{1,2}})\s*(?:小时|h|hrs?|hours?)(?![{_LATIN}])\s*(?P<m>[0-5]?\d)\s*"
                    rf"(?:分钟|分|min|mins|minutes)(?![{_LATIN}])", re.I)
_RR = re.compile(rf"(?<![{_LATIN}])(?P<name>R-?R|R\s*-\s*R)(?P<desc>\s*(?:间期|intervals?|int\.?))?"
                 rf"(?:\s*[:：=]\s*|\s*(?:为|约|of|was|is)\s*|\s*)(?P<v>\d{{1,2}},\d{{3}}|\d{{1,4}}(?:\.\d+)?)\s*"
                 rf"(?P<unit>毫秒|秒|(?:ms|msec|sec|s)(?![{_LATIN}]))", re.I)

_AMPLITUDE = re.compile(rf"(?<![\d.,])(?P<v>\d{{1,2}}(?:\.\d{{1,2}})?)\s*(?:mV|毫伏)(?![{_LATIN}])")
_TOTAL_COUNT = re.compile(rf"(?:总心搏数|总心搏|心搏总数|总心跳数|total\s+(?:beats|QRS\s+complexes|heart\s*beats))"
                          rf"(?:\s|[:：=]|为|of|were|was)*(?P<n>{_BIG})(?!\d|[.,:]\d)(?:\s*(?P<unit>次|beats))?", re.I)
_STAT = re.compile(r"(?P<mean>平均|均值|\b(?:mean|average|avg)\b)|(?P<min>最慢|最低|最小|\b(?:min|minimum|lowest|"
                   r"slowest)\b)|(?P<max>最快|最高|最大|最长|\b(?:max|maximum|highest|fastest|longest)\b)", re.I)
_TOTAL = re.compile(r"总心搏|心搏总数|总心跳|共记录心搏|total\s+(?:beats|QRS|heart\s*beats|complexes)|beats\s+total",
                    re.I)
_SENTENCE_END = re.compile(r"[。；;!?！？\n]|\.(?:\s|$)")


def _int(s: str) -> int:
    return int(s.replace(",", ""))


def _events(text: str) -> Iterator[Entity]:
    for m in _EVENT_RE.finditer(text):
        event = _EVENT_OF[int(m.lastgroup[1:])]  # type: ignore[index]
        latin = m.group()[0].isascii()
        if event in _COUNTED or (event == "pause" and latin):  # "compensatory pause" is no event
            after = _COUNT_AFTER.match(text, m.end())
            before = _COUNT_BEFORE.search(text[max(0, m.start() - 12) : m.start()])
            cue = _NEG_BEFORE.search(text[max(0, m.start() - 16) : m.start()])
            timed = event == "pause" and (_PAUSE_AFTER.match(text, m.end()) or _LONGEST_BEFORE.search(
                text[max(0, m.start() - 12) : m.start()]))
            if not (after or before or cue or timed):
                continue
        attrs = {"rule": "holter_event", "event": event, "concept": EVENT_CONCEPTS[event]}
        if event in _SCP:
            attrs["scp_code"] = _SCP[event]
        yield Entity(m.start(), m.end(), "EVENT", 0.92, "rule", attrs)
        after = _COUNT_AFTER.match(text, m.end())
        if after and not _COUNT.match(text, after.start("n")):  # a bare number: "PVCs: 126"
            end = after.end("unit") if after.group("unit") else after.end("n")
            yield _count(after.start("n"), end, _int(after.group("n")), after.group("unit"), 0.85)
        lasting = _PAUSE_AFTER.match(text, m.end()) if event == "pause" else None
        if lasting:  # "pause 2.4 s": its duration
            unit = lasting.group("unit").lower()
            ms = float(lasting.group("v").replace(",", ".")) * (1 if unit.startswith("m") else 1000)
            yield Entity(lasting.start("v"), lasting.end(), "TIME", 0.85, "rule",
                         {"rule": "duration", "measure": "duration", "value": int(round(ms)), "unit": "ms"})
        before = _COUNT_BEFORE.search(text[max(0, m.start() - 12) : m.start()])
        if before:
            start = max(0, m.start() - 12) + before.start("n")
            yield _count(start, start + len(before.group("n")), _int(before.group("n")), None, 0.85)


def _count(start: int, end: int, n: int, unit: str | None, score: float) -> Entity:
    unit_name = _COUNT_UNITS.get((unit or "").strip().lower(), "beats")
    return Entity(start, end, "COUNT", score, "rule", {"rule": "count", "measure": "count", "value": n,
                                                        "unit": unit_name})


def _counts(text: str) -> Iterator[Entity]:
    for m in _COUNT.finditer(text):
        yield _count(m.start(), m.end(), _int(m.group("n")), m.group("unit"), 0.9)
    for m in _TOTAL_COUNT.finditer(text):  # "total beats 98,562": a count without a unit
        end = m.end("unit") if m.group("unit") else m.end("n")
        yield _count(m.start("n"), end, _int(m.group("n")), m.group("unit"), 0.88)


def _times(text: str) -> Iterator[Entity]:
    for m in _CLOCK.finditer(text):
        if m.group("sep") == "时" and m.group("s") is None and not m.group(0).endswith("分"):
            continue  # "3时12" without 分 is not a clock time
        h = int(m.group("h"))
        ampm = (m.group("ampm") or "").lower().replace(".", "")
        if ampm == "pm" and h < 12:
            h += 12
        elif ampm == "am" and h == 12:
            h = 0
        clock = f"{h:02d}:{m.group('m')}" + (f":{m.group('s')}" if m.group("s") else "")
        yield Entity(m.start(), m.end(), "TIME", 0.9, "rule", {"rule": "time", "measure": "time", "time": clock})
    for m in _DURATION.finditer(text):
        ms = float(m.group("v").replace(",", "")) * _TIME_UNITS[m.group("unit").lower()]
        yield Entity(m.start("v"), m.end(), "TIME", 0.85, "rule",
                     {"rule": "duration", "measure": "duration", "value": int(round(ms)), "unit": "ms"})
    for m in _HOURS.finditer(text):
        ms = (int(m.group("h")) * 60 + int(m.group("m"))) * 60_000
        yield Entity(m.start(), m.end(), "TIME", 0.9, "rule",
                     {"rule": "duration", "measure": "duration", "value": ms, "unit": "ms"})


def _rr(text: str) -> Iterator[Entity]:
    for m in _RR.finditer(text):
        unit, raw = m.group("unit").lower(), m.group("v")
        ms = _int(raw) if "," in raw else float(raw) * (1000 if unit in ("s", "sec", "秒") else 1)
        attrs: dict[str, object] = {"rule": "rr_interval", "measure": "RR", "value": int(round(ms)), "unit": "ms"}
        score = 0.95
        if not 200 <= ms <= 20_000:
            attrs["implausible"] = True
            score /= 2
        yield Entity(m.start(), m.end(), "RR_INTERVAL", score, "rule", attrs)


def _amplitudes(text: str) -> Iterator[Entity]:
    for m in _AMPLITUDE.finditer(text):
        yield Entity(m.start(), m.end(), "AMPLITUDE", 0.9, "rule", {"rule": "amplitude", "measure": "amplitude",
                                                                     "value": float(m.group("v")), "unit": "mV"})


def holter_candidates(text: str) -> list[Entity]:
    """Events, counts, times, durations, RR intervals and amplitudes of ``text`` (overlapping; the caller resolves
    them)."""
    return [*_events(text), *_counts(text), *_times(text), *_rr(text), *_amplitudes(text)]


def event_of(e: Entity) -> str | None:
    """The Holter event an entity names: its ``event``, or the event of its lexicon concept (a model's "房性早搏")."""
    event = e.attrs.get("event")
    if isinstance(event, str):
        return event
    concept = e.attrs.get("concept")
    return CONCEPT_EVENTS.get(concept) if isinstance(concept, str) else None


def _stat(between: str) -> str | None:
    found = None
    for m in _STAT.finditer(between):
        found = m.lastgroup
    return found


def link_context(text: str, entities: Sequence[Entity]) -> list[Entity]:
    """The same entities (same order) with the context attrs of the module docstring. Sorted input is not needed."""
    order = sorted(range(len(entities)), key=lambda i: (entities[i].start, entities[i].end))
    extra: dict[int, dict[str, object]] = {}
    anchor: int | None = None  # the heart rate / RR / event the following counts and times belong to
    prev_end = 0
    pending_count: int | None = None  # a count right before an event ("126 PVCs")
    anchor_longest = False
    for k, i in enumerate(order):
        e = entities[i]
        if e.start < prev_end:  # a rival reading of words already seen (a flagged conflict): no context of its own
            continue
        between = text[prev_end : e.start]
        if _SENTENCE_END.search(between):
            anchor, pending_count = None, None
        measure = e.attrs.get("measure")
        event = event_of(e)
        mine = extra.setdefault(i, {})
        if measure in ("HR", "RR") or event is not None:
            if measure in ("HR", "RR") and (stat := _stat(between)):
                mine["stat"] = "max" if stat == "max" else stat
            if event is not None and pending_count is not None and not between.strip():
                mine["count"] = entities[pending_count].attrs.get("value")
            anchor, pending_count = i, None
            anchor_longest = event is not None and _stat(between[-12:]) == "max"  # "longest pause 2.4 s"
        elif measure == "count":
            value = e.attrs.get("value")
            nxt = entities[order[k + 1]] if k + 1 < len(order) else None
            if _TOTAL.search(between):
                mine["of"] = "total_beats"
            elif nxt is not None and event_of(nxt) is not None and not text[e.end : nxt.start].strip():
                pending_count = i  # "2 ventricular premature beats": the count of the event that follows
            elif anchor is not None and event_of(entities[anchor]) is not None:
                got = extra.setdefault(anchor, {})
                if "count" not in got:
                    got["count"] = value
                elif e.attrs.get("unit") == "beats" and _stat(between) == "max":
                    got["longest_run_beats"] = value
            else:
                pending_count = i
        elif measure == "duration" and anchor is not None and event_of(entities[anchor]) is not None:
            key = "longest_ms" if _stat(between) == "max" or anchor_longest else "duration_ms"
            extra.setdefault(anchor, {}).setdefault(key, e.attrs.get("value"))
        elif measure == "time" and anchor is not None:
            extra.setdefault(anchor, {}).setdefault("time", e.attrs.get("time"))
        prev_end = max(prev_end, e.end)
    out = []
    for i, e in enumerate(entities):
        got = extra.get(i, {})
        if got and "event" not in e.attrs and (event := event_of(e)) and (
                "count" in got or "time" in got or "duration_ms" in got):
            got["event"] = event  # a model's "房性早搏" with its count is the event, as the rule's would be
        add = {k: v for k, v in got.items() if e.attrs.get(k) != v}
        out.append(e if not add else Entity(e.start, e.end, e.label, e.score, e.source, {**e.attrs, **add}))
    return out
