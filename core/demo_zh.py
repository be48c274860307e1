"""The Chinese demo project: seeded synthetic 24-hour Holter summaries (24 小时动态心电图) and 12-lead ECG reports
(常规十二导联心电图), with the labels a Chinese ECG team uses in Label Studio, as a Label Studio FULL JSON export
(:func:`generate_zh_export`, through :func:`core.demo.export_tasks`, the English demo's path).

Labeling conventions (each span's offsets are taken while the text is built, :class:`core.demo_reports.Report`):

- ``HR``: a heart rate with its value: number and unit ("72 次/分", "48bpm"); the key (平均心率, 最慢心率) stays out.
- ``VALUE``: another measured value. Intervals as the rules read them, name, value and unit ("PR 间期 160 ms",
  "QRS=92ms", "RR 间期 2.1 秒", in ``QT/QTc 380/410 ms`` each value alone: "380", "410 ms"); the axis with its key
  ("电轴 +60°"; in ``P/QRS/T 电轴 60/45/30°`` each value alone); counts and amplitudes as number and unit
  ("98562 次", "126 次", "2 阵", "3 对", "8 个心搏", "0.1 mV").
- ``TIME``: when an event occurred ("03:12", "14:35:20") or how long it lasted ("2.3 秒", "12 分钟", "23 小时 41 分").
- ``EVENT``: an arrhythmia event counted or timed in the recording ("房性早搏" followed by its count,
  "短阵房性心动过速", "成对室性早搏", "停搏"), also when none was seen ("未见室性早搏": the cue stays out).
- ``DIAG``: a diagnosis or conclusion ("窦性心律", "窦性心动过速", "完全性右束支传导阻滞", "ST-T改变", "正常心电图"),
  including the ectopy named in a conclusion without a count ("诊断：窦性心律，房性早搏"): the same words as an
  ``EVENT``, told apart by their context, which is what a model must learn.

Phrasing varies per report: several templates and synonyms per field, full-width or half-width punctuation, spaces
or none between a number and its unit, sentences ending in "。" or "；", machine-written ``key=value`` blocks.
About 40% of the tasks carry no annotation. A second seed gives a different set (the adaptation bench trains on
seed 0 and tests on seed 1).
"""

from __future__ import annotations

import random
from typing import Any

from core.demo import export_tasks, label_config
from core.demo_reports import Report

ZH_DEMO_PROJECT_NAME = "Demo: 中文心电图 (Chinese ECG)"
# the base model version the seeded chain makes before the Chinese demo's first training (vocabulary only: seconds;
# bench/README.md, "Adaptation": 10 labelled reports 0.68 -> 0.82 held-out F1, 100 reports 0.88 -> 0.98)
ZH_DEMO_BASE_NAME = "zh-vocabulary"
ZH_DEMO_LABELS = ("HR", "VALUE", "TIME", "EVENT", "DIAG")
ZH_DEMO_LABEL_CONFIG = label_config(ZH_DEMO_LABELS, ("#e6194b", "#4363d8", "#3cb44b", "#f58231", "#911eb4"))

Piece = str | tuple[str, str]

# fmt: off
# (diagnosis, lowest rate, highest rate, has P waves)
_RHYTHMS = [("窦性心律", 60, 99, True), ("窦性心动过速", 101, 140, True), ("窦性心动过缓", 40, 59, True),
            ("窦性心律不齐", 55, 95, True), ("心房颤动", 60, 150, False), ("心房扑动", 75, 150, False),
            ("交界性心律", 40, 60, False)]
_RHYTHM_WEIGHTS = [30, 8, 8, 4, 8, 2, 1]
_ZH_FINDINGS = [["完全性右束支传导阻滞", "不完全性右束支传导阻滞", "完全性左束支传导阻滞", "左前分支阻滞",
                 "一度房室传导阻滞"],
                ["左心室肥厚", "左室高电压", "右心室肥厚"], ["ST-T改变", "T波低平", "T波倒置", "ST段压低"],
                ["电轴左偏", "电轴右偏"], ["房性早搏", "室性早搏"]]
_HOLTER_HEADERS = ["24小时动态心电图报告", "动态心电图（Holter）分析报告", "24 小时动态心电图检查", "Holter 监测报告"]
_ECG_HEADERS = ["常规十二导联心电图", "12 导联心电图报告", "心电图检查报告", "静息十二导联心电图"]
# fmt: on


class _Style:
    """One report's punctuation: full-width or half-width, "。" or "；" between sentences, number-unit spacing."""

    def __init__(self, rng: random.Random) -> None:
        full = rng.random() < 0.7
        self.comma = "，" if full else ", "
        self.colon = "：" if full else ": "
        self.open, self.close = ("（", "）") if full else (" (", ")")
        self.end = rng.choice(["。", "；"]) if full else rng.choice([". ", "; "])
        self.gap = rng.choice(["", " "])
        self.rate_unit = rng.choices(["次/分", "次/分钟", "bpm", "次/min"], [6, 2, 2, 1])[0]

    def unit(self, number: str, unit: str) -> str:
        return f"{number}{self.gap}{unit}"


def _clock(rng: random.Random, seconds: bool = False) -> str:
    t = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    return t + f":{rng.randint(0, 59):02d}" if seconds else t


def _when(rng: random.Random, st: _Style) -> list[Piece]:
    """ "，发生于 03:12" / "（03:12）" / " 出现在03:12" ."""
    t = (_clock(rng, rng.random() < 0.2), "TIME")
    form = rng.randrange(4)
    if form == 0:
        return [st.comma, "发生于", rng.choice(["", " "]), t]
    if form == 1:
        return [st.open, t, st.close]
    if form == 2:
        return [st.comma, "出现在", t]
    return [st.comma, "于 ", t]


def _sentences(r: Report, st: _Style, sentences: list[list[Piece]]) -> None:
    for k, pieces in enumerate(sentences):
        r.add(*pieces)
        r.add(st.end if k < len(sentences) - 1 else st.end.strip().replace("；", "。").replace(";", "."))


def _ectopy(rng: random.Random, st: _Style, atrial: bool) -> list[Piece]:
    """Premature beats of one kind with their count, couplets and runs; or none seen."""
    name = rng.choice(["房性早搏", "房性期前收缩", "房早"] if atrial else ["室性早搏", "室性期前收缩", "室早"])
    if rng.random() < 0.2:
        return [rng.choice(["未见", "未发现"]), (name, "EVENT")]
    count = rng.choice([rng.randint(1, 40), rng.randint(41, 900), rng.randint(900, 12000)])
    form = rng.randrange(3)
    if form == 0:
        out: list[Piece] = [(name, "EVENT"), rng.choice([" ", "", "共", st.colon]),
                            (st.unit(str(count), "次"), "VALUE")]
    elif form == 1:
        out = [(name, "EVENT"), "总数", rng.choice(["", "为"]), (st.unit(str(count), "次"), "VALUE")]
    else:
        out = ["共发生", (name, "EVENT"), (st.unit(str(count), "次"), "VALUE")]
    if count > 40 and rng.random() < 0.5:
        out += [st.comma, "占总心搏", f"{rng.randint(1, 99) / 100:.2f}%"]
    if count > 40 and rng.random() < 0.5:
        couplet = rng.choice(["成对房性早搏", "成对房早"] if atrial else ["成对室性早搏", "成对室早"])
        out += [st.comma, "其中", (couplet, "EVENT"), (st.unit(str(rng.randint(1, 30)), "对"), "VALUE")]
    if count > 40 and rng.random() < 0.6:
        run = rng.choice(["短阵房性心动过速", "短阵房速"] if atrial else ["短阵室性心动过速", "短阵室速"])
        out += [st.comma, (run, "EVENT"), (st.unit(str(rng.randint(1, 12)), "阵"), "VALUE")]
        if rng.random() < 0.6:
            out += [st.comma, "最长一阵由", (st.unit(str(rng.randint(3, 25)), "个心搏"), "VALUE"), "组成"]
        if rng.random() < 0.5:
            out += [st.comma, "持续", (st.unit(str(rng.randint(2, 30)), "秒"), "TIME")]
        if rng.random() < 0.7:
            out += _when(rng, st)
    return out


def holter_report(rng: random.Random) -> Report:
    st = _Style(rng)
    r = Report()
    r.add(rng.choice(_HOLTER_HEADERS), "\n")
    if rng.random() < 0.6:
        hours, minutes = rng.randint(21, 23), rng.randint(0, 59)
        length = f"{hours}{st.gap}小时{st.gap}{minutes}{st.gap}分"
        r.add(rng.choice(["记录时长", "有效分析时间"]), st.colon, (length, "TIME"), "\n")
    sentences: list[list[Piece]] = []
    mean = rng.randint(58, 95)
    low, high = rng.randint(38, mean - 10), rng.randint(mean + 25, 175)
    beats = mean * 60 * 24 + rng.randint(-3000, 3000)
    total = rng.choice([f"总心搏数{st.colon}", "24 小时总心搏数为", "全程共记录心搏", "总心搏数 "])
    sentences.append([total, (st.unit(str(beats), "次"), "VALUE")])
    hr = [[rng.choice(["平均心率", "平均心室率"]), rng.choice(["", " ", st.colon, "为"]),
           (st.unit(str(mean), st.rate_unit), "HR")],
          [rng.choice(["最慢心率", "最低心率", "最小心率"]), rng.choice(["", " ", "为"]),
           (st.unit(str(low), st.rate_unit), "HR"), *_when(rng, st)],
          [rng.choice(["最快心率", "最高心率", "最大心率"]), rng.choice(["", " ", "为"]),
           (st.unit(str(high), st.rate_unit), "HR"), *_when(rng, st)]]
    if rng.random() < 0.5:  # one sentence, commas between
        sentences.append([p for k, part in enumerate(hr) for p in ([st.comma] if k else []) + part])
    else:
        sentences += hr
    seen = []
    for atrial in (True, False):
        sentences.append(_ectopy(rng, st, atrial))
        if sentences[-1][0] not in ("未见", "未发现") and rng.random() < 0.6:
            seen.append("房性早搏" if atrial else "室性早搏")
    if rng.random() < 0.5:
        rr = round(rng.uniform(1.2, 2.9), 1)
        value = f"{rr}{st.gap}秒" if rng.random() < 0.6 else f"{int(rr * 1000)}{st.gap}ms"
        name = rng.choice(["RR 间期", "RR间期", "R-R 间期"])
        sentences.append(["最长", rng.choice(["", " "]), (f"{name}{rng.choice(['', ' ', st.colon])}{value}", "VALUE"),
                          *_when(rng, st)])
    elif rng.random() < 0.6:
        sentences.append([(rng.choice(["停搏", "窦性停搏", "长间歇"]), "EVENT"),
                          (st.unit(str(rng.randint(1, 5)), "次"), "VALUE"), st.comma, "最长",
                          (st.unit(f"{rng.uniform(2.0, 3.5):.1f}", "秒"), "TIME"), *_when(rng, st)])
    else:
        sentences.append(["未见", (rng.choice(["停搏", "长间歇"]), "EVENT")])
    if rng.random() < 0.3:
        sentences.append([("ST段压低", "DIAG"), (st.unit(f"{rng.randint(1, 3) / 10:.1f}", "mV"), "VALUE"),
                          st.comma, "持续", (st.unit(str(rng.randint(3, 40)), "分钟"), "TIME"), *_when(rng, st)])
    elif rng.random() < 0.5:
        sentences.append([rng.choice(["未见明显", "未见"]), ("ST-T改变", "DIAG")])
    _sentences(r, st, sentences)
    rhythm = "窦性心动过缓" if mean < 60 else rng.choices(["窦性心律", "窦性心律不齐"], [5, 1])[0]
    r.add("\n", rng.choice(["结论", "诊断", "印象"]), st.colon, (rhythm, "DIAG"))
    for term in seen:
        r.add(st.comma, rng.choice(["", "偶发", "频发"]), (term, "DIAG"))
    r.add("。" if st.comma == "，" else ".")
    return r


def ecg_report(rng: random.Random) -> Report:
    st = _Style(rng)
    r = Report()
    if rng.random() < 0.7:
        r.add(rng.choice(_ECG_HEADERS), "\n")
    rhythm, low, high, p_waves = rng.choices(_RHYTHMS, _RHYTHM_WEIGHTS)[0]
    rate = rng.randint(low, high)
    findings = [rng.choice(g) for g in rng.sample(_ZH_FINDINGS, rng.choices([0, 1, 2], [4, 4, 2])[0])]
    if not p_waves:
        findings = [f for f in findings if f != "一度房室传导阻滞"]
    pr = rng.randint(210, 280) if "一度房室传导阻滞" in findings else rng.randint(120, 200)
    wide = any(f.startswith("完全性") for f in findings)
    qrs = rng.randint(122, 160) if wide else rng.randint(70, 110)
    qt = rng.randint(320, 440)
    qtc = min(max(qt + rng.randint(-20, 60), 360), 500)
    axis = {"电轴左偏": rng.randint(-60, -31), "电轴右偏": rng.randint(100, 150)}.get(
        next((f for f in findings if f.startswith("电轴")), ""), rng.randint(0, 90))
    sign = "+" if axis > 0 and rng.random() < 0.5 else ""
    if rng.random() < 0.45:  # the machine block: key=value pairs on one line
        eq = rng.choice(["=", ": ", "："])
        rate_key = rng.choice(["心室率", "心率", "HR", "Vent. rate"])
        items: list[list[Piece]] = [[rate_key, eq, (st.unit(str(rate), st.rate_unit), "HR")]]
        if p_waves:
            items.append([(f"{rng.choice(['PR', 'PR间期', 'P-R'])}{eq}{pr}{st.gap}ms", "VALUE")])
        items.append([(f"{rng.choice(['QRS', 'QRS时限', 'QRSd'])}{eq}{qrs}{st.gap}ms", "VALUE")])
        if rng.random() < 0.5:
            items.append([f"QT/QTc{eq}", (str(qt), "VALUE"), "/", (f"{qtc}{st.gap}ms", "VALUE")])
        else:
            formula = rng.choice(["(Bazett)", "（Bazett）", "(Fridericia)", "B", ""])
            items.append([(f"QT{eq}{qt}{st.gap}ms", "VALUE"), st.comma.strip() + " ",
                          (f"QTc{formula}{eq}{qtc}{st.gap}ms", "VALUE")])
        if rng.random() < 0.6:
            t_axis = rng.randint(-20, 90)
            items.append([rng.choice(["P/QRS/T 电轴", "P-R-T 轴", "P-R-T axes"]), eq.rstrip() + " ",
                          (str(rng.randint(0, 80)), "VALUE"), "/", (str(axis), "VALUE"), "/",
                          (f"{t_axis}{rng.choice(['°', ''])}", "VALUE")])
        sep = rng.choice(["；", "  ", "，", "\n"])
        for k, item in enumerate(items):
            r.add(*([sep] if k else []), *item)
        r.add("\n")
    else:
        sentences: list[list[Piece]] = [[rng.choice(["心率", "心室率"]), rng.choice(["", " ", st.colon, "约"]),
                                         (st.unit(str(rate), st.rate_unit), "HR")]]
        if p_waves:
            sentences.append([(f"PR{rng.choice(['间期', ' 间期'])}{rng.choice(['', ' ', st.colon])}{pr}{st.gap}ms",
                               "VALUE")])
        sentences.append([(f"QRS{rng.choice(['时限', ' 时限', '波群时限'])}{rng.choice(['', ' ', st.colon])}{qrs}"
                           f"{st.gap}ms", "VALUE")])
        if rng.random() < 0.6:
            sentences.append([(f"QTc{rng.choice(['', '间期'])}{rng.choice([' ', st.colon])}{qtc}{st.gap}ms", "VALUE")])
        if rng.random() < 0.7:
            sentences.append([(f"{rng.choice(['电轴', '心电轴'])}{rng.choice([' ', st.colon])}{sign}{axis}°", "VALUE")])
        _sentences(r, st, sentences)
        r.add("\n")
    r.add(rng.choice(["诊断", "结论", "心电图诊断"]), st.colon)
    if rng.random() < 0.3:
        r.add("1. ", (rhythm, "DIAG"))
        for k, f in enumerate(findings, start=2):
            r.add(f"\n{k}. ", (f, "DIAG"))
    else:
        r.add((rhythm, "DIAG"))
        for f in findings:
            r.add(st.comma, (f, "DIAG"))
    normal = rhythm == "窦性心律" and not findings
    if normal and rng.random() < 0.6:
        r.add(st.comma if rng.random() < 0.5 else "\n", (rng.choice(["正常心电图", "大致正常心电图"]), "DIAG"))
    r.add("。" if st.comma == "，" else ".")
    return r


def _make(rng: random.Random) -> tuple[Report, dict[str, Any]]:
    kind = rng.choice(["holter", "ecg"])
    return (holter_report(rng) if kind == "holter" else ecg_report(rng)), {"modality": kind, "lang": "zh"}


def generate_zh_export(n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` synthetic Chinese Holter and 12-lead reports as a Label Studio FULL JSON export (about 40% without
    annotation); the same ``seed`` gives the same export, another seed another set."""
    return export_tasks(_make, n, seed + 1_000_003)  # never the English demo's random stream for the same seed


def zh_demo_adapt_config() -> Any:
    """The adaptation the demo seed queues for the Chinese demo: the bundled model's vocabulary extended with the
    project's characters (the `[UNK]` share of its text falls from about 48% to 0), no masked-LM steps (they added
    nothing measurable from 50 labelled reports; the Train page's Adapt form offers them)."""
    from core.adaptconfig import AdaptConfig

    return AdaptConfig(name=ZH_DEMO_BASE_NAME, mlm_steps=0)
