// ReportLens span view: the report text with its suggested and reviewed entities marked, reviewed with the keyboard
// and the mouse. A Streamlit Custom Component v2 (ui/spanview/__init__.py mounts it; ui/review_desk.py answers).
//
// Report text and label names are untrusted: the DOM is built with createElement / createTextNode / textContent
// only, never innerHTML, and colours are used only when they are plain hex colours.
//
// Each decision sends ONE trigger event {action, item, start, end, label, seq, doc} to Python. While an event waits
// for Python's answer (data.seq >= its seq), later decisions queue here and go one at a time, so no keypress is lost
// (Streamlit keeps only the last value of a trigger per rerun). The next entity is highlighted at once (optimistic);
// Python's answer then redraws the authoritative state.

const VIEWS = new WeakMap();
const COLOR = /^#[0-9a-fA-F]{3,8}$/;
const WORD = /[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu;
const ANSWER_TIMEOUT_MS = 20000;

const keyOf = (it) => [it.start, it.end, it.label];
const keyStr = (k) => `${k[0]}:${k[1]}:${k[2]}`;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

class SpanView {
  constructor(parent) {
    this.root = parent.querySelector(".rl-sv");
    this.bar = this.root.querySelector(".rl-sv-bar");
    this.textBox = this.root.querySelector(".rl-sv-text");
    this.status = this.root.querySelector(".rl-sv-status");
    this.data = null;
    this.doc = null;
    this.cur = -1;
    this.draft = null;
    this.seq = 0;
    this.acked = 0;
    this.inflight = null;
    this.queue = [];
    this.busy = new Set();
    this.active = 0; // the label new spans get (index into data.labels)
    this.gen = 0;
    this.starts = new Map(); // text node -> its offset in the report
    this.textNodes = [];
    this.onKey = (e) => this.key(e);
    this.onUp = (e) => this.mouseUp(e);
    this.root.addEventListener("keydown", this.onKey);
    this.textBox.addEventListener("mouseup", this.onUp);
  }

  destroy() {
    this.root.removeEventListener("keydown", this.onKey);
    this.textBox.removeEventListener("mouseup", this.onUp);
    clearTimeout(this.timer);
  }

  // ------------------------------------------------------------ data from Python

  update(data) {
    const fresh = this.data === null || data.doc !== this.doc;
    const answered = this.inflight !== null && data.seq >= this.inflight.seq;
    // Python's highlight wins after an answered event, a new report, or entities changed by other means (a button)
    const moved = fresh || data.seq !== this.acked || JSON.stringify(data.items) !== JSON.stringify(this.data.items);
    this.data = data;
    this.acked = Math.max(this.acked, data.seq);
    this.seq = Math.max(this.seq, data.seq);
    if (fresh) {
      this.doc = data.doc;
      this.queue = [];
      this.inflight = null;
      this.words = Array.from(data.text.matchAll(WORD), (m) => [m.index, m.index + m[0].length]);
      if (this.active >= data.labels.length) this.active = 0;
    }
    if (answered) {
      clearTimeout(this.timer);
      this.inflight = null;
    }
    this.busy = new Set([...this.queue, this.inflight || {}].filter((ev) => ev.item).map((ev) => keyStr(ev.item)));
    if (moved && this.queue.length === 0) this.setCurrent(data.current);
    else if (this.cur >= data.items.length) this.setCurrent(-1);
    this.render();
    if (this.inflight === null && this.queue.length) this.send(this.queue.shift());
    const focused = document.activeElement;
    if (data.autofocus && (!focused || focused === document.body || this.root.contains(focused))) {
      this.root.focus({ preventScroll: true });
    }
  }

  setCurrent(i) {
    this.cur = i;
    const it = this.data.items[i];
    this.draft = it ? { start: it.start, end: it.end, label: it.label } : null;
  }

  // ------------------------------------------------------------ drawing

  visible() {
    const items = this.data.items;
    const shown = items.map((it, i) => ({ it, i })).filter(({ it }) => it.status !== "rejected");
    const overlaps = (a, b) => a.start < b.end && b.start < a.end;
    const rejected = items.map((it, i) => ({ it, i }))
      .filter(({ it }) => it.status === "rejected" && !shown.some((s) => overlaps(s.it, it)));
    return [...shown, ...rejected].map(({ it, i }) => {
      const range = i === this.cur && this.draft ? this.draft : it;
      return { it, i, start: range.start, end: range.end };
    }).sort((a, b) => a.start - b.start || a.end - b.end);
  }

  textNode(start, end) {
    const node = document.createTextNode(this.data.text.slice(start, end));
    this.starts.set(node, start);
    this.textNodes.push(node);
    return node;
  }

  markFor(v, start, end) {
    const st = this.busy.has(keyStr(keyOf(v.it))) ? "busy" : v.it.status;
    const mark = el("mark", `rl-sv-mark rl-sv-${st}` + (v.it.low ? " rl-sv-low" : "") +
      (v.i === this.cur ? " rl-sv-current" : ""));
    mark.dataset.item = String(v.i);
    const color = this.color(v.i === this.cur && this.draft ? this.draft.label : v.it.label);
    if (color) mark.style.setProperty("--rl-sv-color", color);
    mark.appendChild(this.textNode(start, end));
    return mark;
  }

  tagFor(v) {
    const label = v.i === this.cur && this.draft ? this.draft.label : v.it.label;
    const score = v.it.status === "pending" ? ` ${v.it.score.toFixed(2)}` : ` ${STATUS_SIGN[v.it.status] || ""}`;
    const tag = el("span", "rl-sv-tag", label + score + (v.it.low ? " ⚠" : ""));
    tag.setAttribute("aria-hidden", "true");
    return tag;
  }

  color(label) {
    const found = this.data.labels.find((l) => l.name === label);
    return found && COLOR.test(found.color) ? found.color : null;
  }

  render() {
    const { text, labels, items } = this.data;
    this.bar.replaceChildren();
    labels.forEach((l, i) => {
      const chip = el("button", "rl-sv-chip" + (i === this.active ? " rl-sv-active" : ""));
      chip.type = "button";
      chip.tabIndex = -1;
      if (COLOR.test(l.color)) chip.style.setProperty("--rl-sv-color", l.color);
      chip.appendChild(el("kbd", "", i < 9 ? String(i + 1) : "·"));
      chip.appendChild(document.createTextNode(l.name));
      chip.title = `New spans get this label${i < 9 ? `; on an entity, key ${i + 1} relabels it` : ""}`;
      chip.addEventListener("mousedown", (e) => e.preventDefault());
      chip.addEventListener("click", () => { this.active = i; this.render(); this.root.focus(); });
      this.bar.appendChild(chip);
    });
    this.starts = new Map();
    this.textNodes = [];
    const out = [];
    let pos = 0;
    const vis = this.visible();
    for (let k = 0; k < vis.length;) {
      // a cluster: entities connected by overlap
      let end = vis[k].end;
      let j = k + 1;
      while (j < vis.length && vis[j].start < end) { end = Math.max(end, vis[j].end); j += 1; }
      const cluster = vis.slice(k, j);
      const start = cluster[0].start;
      if (start > pos) out.push(this.textNode(pos, start));
      if (cluster.length === 1) {
        const mark = this.markFor(cluster[0], start, end);
        mark.appendChild(this.tagFor(cluster[0]));
        out.push(mark);
      } else {
        const group = el("span", "rl-sv-overlap");
        const cuts = [...new Set(cluster.flatMap((v) => [v.start, v.end]))].sort((a, b) => a - b);
        for (let c = 0; c + 1 < cuts.length; c += 1) {
          const covering = cluster.filter((v) => v.start <= cuts[c] && v.end >= cuts[c + 1]);
          const top = covering.find((v) => v.i === this.cur) || covering[0];
          group.appendChild(top ? this.markFor(top, cuts[c], cuts[c + 1]) : this.textNode(cuts[c], cuts[c + 1]));
        }
        cluster.forEach((v) => group.appendChild(this.tagFor(v)));
        out.push(group);
      }
      pos = Math.max(pos, end);
      k = j;
    }
    if (pos < text.length) out.push(this.textNode(pos, text.length));
    this.textBox.replaceChildren(...out);
    this.root.dataset.doc = String(this.data.doc);
    this.root.dataset.seq = String(this.acked);
    this.root.dataset.current = String(this.cur);
    const it = items[this.cur];
    this.root.dataset.currentKey = it ? keyStr(keyOf(it)) : "";
    this.renderStatus();
    const first = this.textBox.querySelector(".rl-sv-current");
    if (first && first.scrollIntoView) first.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  renderStatus() {
    const { items, message, error, locked } = this.data;
    const parts = [];
    const it = items[this.cur];
    if (it) {
      const d = this.draft;
      const changed = d.start !== it.start || d.end !== it.end || d.label !== it.label;
      parts.push(`Entity ${this.cur + 1} of ${items.length}: ${d.label} “${this.data.text.slice(d.start, d.end)}”` +
        ` · ${it.status}` + (it.status === "pending" ? ` · ${it.score.toFixed(2)}` : "") +
        (it.low ? " · low confidence" : "") + (changed ? " · changed: Enter saves, Esc resets" : ""));
    } else {
      parts.push(items.some((x) => x.status === "pending") ? "No entity selected: J / ↓ goes to the next one."
        : "No suggestion waits for a decision.");
    }
    if (this.inflight || this.queue.length) parts.push("saving…");
    this.status.replaceChildren();
    this.status.appendChild(el("span", "", parts.join(" · ")));
    if (locked) this.status.appendChild(el("span", "rl-sv-error", " Type your name in Reviewer (sidebar) first."));
    else if (this.note) this.status.appendChild(el("span", "rl-sv-error", " " + this.note));
    else if (error) this.status.appendChild(el("span", "rl-sv-error", " " + error));
    else if (message) this.status.appendChild(el("span", "rl-sv-message", " " + message));
    this.note = null;
  }

  // ------------------------------------------------------------ events to Python

  emit(ev) {
    if (this.data.locked) { this.render(); return; }
    ev.doc = this.data.doc;
    if (ev.item) this.busy.add(keyStr(ev.item));
    if (this.inflight) this.queue.push(ev); else this.send(ev);
    if (ev.action !== "add") this.setCurrent(this.nextPending(this.cur));
    this.render();
  }

  send(ev) {
    this.seq += 1;
    ev.seq = this.seq;
    this.inflight = { seq: ev.seq, item: ev.item };
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.inflight = null;
      this.queue = [];
      this.note = "The app did not answer; reload the page if nothing changes.";
      this.render();
    }, ANSWER_TIMEOUT_MS);
    this.sendTrigger("event", ev);
  }

  nextPending(from) {
    const items = this.data.items;
    for (let step = 1; step <= items.length; step += 1) {
      const i = (from + step + items.length) % items.length;
      if (items[i].status === "pending" && !this.busy.has(keyStr(keyOf(items[i])))) return i;
    }
    return -1;
  }

  commit(label) {
    const it = this.data.items[this.cur];
    if (!it) return;
    const d = { ...this.draft, label: label || this.draft.label };
    const moved = d.start !== it.start || d.end !== it.end;
    const relabelled = d.label !== it.label;
    const action = moved && relabelled ? "correct" : moved ? "adjust" : relabelled ? "relabel" : "accept";
    this.emit({ action, item: keyOf(it), start: d.start, end: d.end, label: d.label });
  }

  reject() {
    const it = this.data.items[this.cur];
    if (it) this.emit({ action: "reject", item: keyOf(it), start: it.start, end: it.end, label: it.label });
  }

  move(step) {
    const n = this.data.items.length;
    if (!n) return;
    this.setCurrent(this.cur < 0 ? (step > 0 ? 0 : n - 1) : (this.cur + step + n) % n);
    this.render();
  }

  edge(which, step) {
    if (!this.draft) return;
    const d = this.draft;
    const w = this.words;
    if (which === "start" && step < 0) {
      const prev = w.filter(([s]) => s < d.start).pop();
      if (prev) d.start = prev[0];
    } else if (which === "start") {
      const next = w.find(([s]) => s > d.start);
      if (next && next[0] < d.end) d.start = next[0];
    } else if (step > 0) {
      const next = w.find(([, e]) => e > d.end);
      if (next) d.end = next[1];
    } else {
      const prev = w.filter(([, e]) => e < d.end).pop();
      if (prev && prev[1] > d.start) d.end = prev[1];
    }
    this.render();
  }

  digit(n) {
    const label = this.data.labels[n - 1];
    if (!label) return;
    this.active = n - 1;
    if (this.data.items[this.cur]) this.commit(label.name); else this.render();
  }

  key(e) {
    const t = e.target;
    if (t && t !== this.root && /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) return;
    const k = e.key;
    const arrow = k.startsWith("Arrow");
    if ((e.ctrlKey || e.metaKey || e.altKey) && !(arrow && e.shiftKey)) return;
    if (e.shiftKey && !arrow) return; // Shift+A, Shift+X, … belong to the page's buttons
    if (e.shiftKey) {
      const shrink = e.altKey || e.ctrlKey || e.metaKey;
      if (k === "ArrowLeft") this.edge(shrink ? "end" : "start", -1);
      else if (k === "ArrowRight") this.edge(shrink ? "start" : "end", 1);
      else return;
    } else if (k === "a" || k === "A" || k === "Enter") this.commit();
    else if (k === "x" || k === "X" || k === "Backspace" || k === "Delete") this.reject();
    else if (k === "j" || k === "ArrowDown" || k === "ArrowRight") this.move(1);
    else if (k === "k" || k === "ArrowUp" || k === "ArrowLeft") this.move(-1);
    else if (/^[1-9]$/.test(k)) this.digit(Number(k));
    else if (k === "Escape") { this.setCurrent(this.cur); this.render(); }
    else return;
    e.preventDefault();
    e.stopPropagation();
  }

  // ------------------------------------------------------------ the mouse

  offsetAt(node, offset) {
    if (this.starts.has(node)) return this.starts.get(node) + offset;
    const point = document.createRange();
    point.setStart(node, offset);
    for (const t of this.textNodes) {
      if (point.comparePoint(t, 0) >= 0) return this.starts.get(t);
    }
    return this.data.text.length;
  }

  mouseUp(e) {
    const sel = document.getSelection();
    if (sel && !sel.isCollapsed && sel.rangeCount && this.textBox.contains(sel.anchorNode)
        && this.textBox.contains(sel.focusNode)) {
      const r = sel.getRangeAt(0);
      let s = this.offsetAt(r.startContainer, r.startOffset);
      let end = this.offsetAt(r.endContainer, r.endOffset);
      const text = this.data.text;
      while (s < end && /\s/.test(text[s])) s += 1;
      while (end > s && /\s/.test(text[end - 1])) end -= 1;
      sel.removeAllRanges();
      this.root.focus({ preventScroll: true });
      const label = this.data.labels[this.active];
      if (s < end && label) this.emit({ action: "add", item: null, start: s, end, label: label.name });
      return;
    }
    const mark = e.target.closest && e.target.closest(".rl-sv-mark");
    if (mark && this.textBox.contains(mark)) {
      this.setCurrent(Number(mark.dataset.item));
      this.render();
    }
    this.root.focus({ preventScroll: true });
  }
}

const STATUS_SIGN = { accepted: "✓", corrected: "✎", rejected: "✗" };

export default function spanView(component) {
  const { parentElement, data, setTriggerValue } = component;
  let view = VIEWS.get(parentElement);
  if (!view) {
    view = new SpanView(parentElement);
    VIEWS.set(parentElement, view);
  }
  view.sendTrigger = setTriggerValue;
  view.gen += 1;
  const gen = view.gen;
  view.update(data);
  return () => {
    // Streamlit calls the cleanup of the latest call on unmount (an earlier call's, only if it was superseded
    // while loading): destroy the view only when this call is still the latest
    if (VIEWS.get(parentElement) === view && view.gen === gen) {
      view.destroy();
      VIEWS.delete(parentElement);
    }
  };
}
