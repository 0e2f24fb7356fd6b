"""Write docs/performance.md's results table from benchmarks/results/summary.json.

    python benchmarks/write_docs.py      # run_all.py calls it after every `make bench`

The table and the machine line between the markers are generated; the
method around them is prose. A test checks the page matches the JSON, so a
figure is never edited by hand.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "summary.json"
PAGE = ROOT / "docs" / "performance.md"
BEGIN = "<!-- bench:begin (written by benchmarks/write_docs.py from benchmarks/results/summary.json) -->"
END = "<!-- bench:end -->"


def render(summary: dict) -> str:
    m = summary["machine"]
    lines = [BEGIN, "",
             f"Last `make bench`: {summary['when']} on {m['cores']}-core {m['cpu'] or 'CPU'}, Python {m['python']}, "
             f"numpy {m['numpy']}, onnxruntime {m['onnxruntime']}, torch {m['torch']} ({m['platform']}).", "",
             "| metric | curvae | baseline | ratio | target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in summary["rows"]]
    return "\n".join([*lines, "", END])


def updated_page(page: str, summary: dict) -> str:
    start, end = page.index(BEGIN), page.index(END) + len(END)
    return page[:start] + render(summary) + page[end:]


def main() -> None:
    new = updated_page(PAGE.read_text(encoding="utf-8"), json.loads(RESULTS.read_text(encoding="utf-8")))
    tmp = PAGE.with_name(f".{PAGE.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, PAGE)
    print(f"wrote {PAGE.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
