"""Review speed: the time per decision on the Review page's span view, in a real browser against the real app.

The app (``streamlit run app.py``, as the browser tests start it) runs on a fresh SQLite database seeded with the demo
project (300 synthetic reports, no model, so the suggestions are the rules'). Headless Chromium opens the Review
page, types a reviewer name, focuses the span view and presses A (accept) ``--decisions`` times. For each press the
page itself records (``performance.now()``, no Playwright round trip in the figure):

- **highlight**: keydown -> the next entity highlighted (the view moves at once, before Python answers);
- **stored**: keydown -> Python's answer drawn (the decision is in the database and the view redrawn from it;
  a decision that finishes the report also reloads the page's worklist and moves to the next report).

A report with nothing pending is skipped with the Next report button, not counted. Results: ``bench/README.md``,
"Review speed".

    python bench/review_bench.py [--decisions 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

PROBE = """() => {
    window.__rl = [];
    document.addEventListener('keydown', () => window.__rl.push({down: performance.now()}), true);
    const view = document.querySelector('.rl-sv');
    new MutationObserver((records) => {
        const last = window.__rl[window.__rl.length - 1];
        if (!last) return;
        for (const r of records) {
            const now = performance.now();
            if (view.getAttribute(r.attributeName) === r.oldValue) continue;  // set again to the same value
            if (r.attributeName === 'data-current-key' && last.highlight === undefined) last.highlight = now;
            if (r.attributeName === 'data-seq' && last.stored === undefined) {
                last.stored = now;
                last.doc = view.dataset.doc;
            }
        }
    }).observe(view, {attributes: true, attributeOldValue: true,
                                   attributeFilter: ['data-current-key', 'data-seq']});
}"""


def _settle(page) -> None:
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=60_000)


def run(decisions: int) -> dict:
    from playwright.sync_api import sync_playwright

    from services.imports import seed_demo

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        env = {"REPORTLENS_DATA_DIR": str(Path(tmp) / "data")}
        with running_app(browser, Path(tmp), env) as app:
            seed_demo(app.engine(), jobs=False)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{app.url}/review")
            _settle(page)
            box = page.get_by_label("Reviewer")
            box.fill("bench")
            box.press("Enter")
            page.wait_for_selector(".rl-sv-status:not(:has-text('Type your name'))")
            _settle(page)
            page.evaluate(PROBE)
            rows, skipped, seq = [], 0, 0
            while len(rows) < decisions:
                view = page.locator(".rl-sv")
                if view.get_attribute("data-current") == "-1":  # nothing pending here: next report
                    skipped += 1
                    print(f"report {view.get_attribute('data-doc')}: nothing pending, next", file=sys.stderr)
                    if skipped > 50:
                        raise SystemExit("50 reports in a row with nothing pending; is the demo seeded?")
                    page.get_by_role("button", name="Next report").click()
                    time.sleep(0.3)
                    _settle(page)
                    page.evaluate(PROBE)
                    continue
                doc = view.get_attribute("data-doc")
                view.focus()
                page.keyboard.press("a")
                seq += 1
                page.wait_for_selector(f".rl-sv[data-seq='{seq}']")
                _settle(page)
                mark = page.evaluate("window.__rl[window.__rl.length - 1]")
                rows.append({"highlight": mark["highlight"] - mark["down"], "stored": mark["stored"] - mark["down"],
                             "moved_on": mark.get("doc") != doc})
                if rows[-1]["moved_on"]:
                    page.evaluate(PROBE)  # a full rerun may have rebuilt the view
        browser.close()
    return {"rows": rows, "skipped": skipped}


def _summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    q = statistics.quantiles(values, n=10, method="inclusive") if len(values) > 1 else values
    return f"median {statistics.median(values):.0f} ms, p90 {q[-1]:.0f} ms, max {max(values):.0f} ms (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=30)
    args = parser.parse_args()
    load = os.getloadavg()
    t = time.monotonic()
    out = run(args.decisions)
    rows = out["rows"]
    within = [r["stored"] for r in rows if not r["moved_on"]]
    moved = [r["stored"] for r in rows if r["moved_on"]]
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
          f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; wall {time.monotonic() - t:.0f} s")
    print(f"decisions: {len(rows)} (reports skipped, nothing pending: {out['skipped']})")
    print(f"highlight next entity (keydown -> highlight): {_summary([r['highlight'] for r in rows])}")
    print(f"stored, within a report (fragment rerun):      {_summary(within)}")
    print(f"stored, finishing a report (page moves on):    {_summary(moved)}")
    print(f"stored, all decisions:                         {_summary([r['stored'] for r in rows])}")


if __name__ == "__main__":
    main()
