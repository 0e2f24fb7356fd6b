"""Write docs/performance.md's results table from benchmarks/results/summary.json, and docs/scale.md's from scale.json.

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
SCALE_RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
SCALE_PAGE = ROOT / "docs" / "scale.md"
SCALE_BEGIN = "<!-- bench:begin (written by benchmarks/write_docs.py from benchmarks/results/scale.json) -->"


def render(summary: dict) -> str:
    m = summary["machine"]
    lines = [BEGIN, "",
             f"Last `make bench`: {summary['when']} on {m['cores']}-core {m['cpu'] or 'CPU'}, Python {m['python']}, "
             f"numpy {m['numpy']}, onnxruntime {m['onnxruntime']}, torch {m['torch']} ({m['platform']}).", "",
             "| metric | curvae | baseline | ratio | target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in summary["rows"]]
    return "\n".join([*lines, "", END])


def render_scale(sc: dict) -> str:
    m, d = sc["machine"], sc["dask"]
    lines = [SCALE_BEGIN, "",
             f"Last run: {sc['when']} on {m['cores']}-core {m['cpu'] or 'CPU'}, Python {m['python']}, "
             f"numpy {m['numpy']}, onnxruntime {m['onnxruntime']}; the default network (hidden 256), "
             "uncertainty and the out-of-family flag on, one onnxruntime and one BLAS thread per process.", "",
             "`model.fit` in memory (fresh process each): working memory = peak RSS − RSS with the inputs "
             "loaded − the result's own bytes.", "",
             "| targets | µs per target | working memory | inputs | outputs |", "|---|---|---|---|---|"]
    for r in sc["in_memory"]:
        lines.append(f"| {r['rows']:,} | {r['us_per_target']:.1f} | {r['working_mib']:.0f} MiB | "
                     f"{r['input_mib']:.0f} MiB | {r['output_mib']:.0f} MiB |")
    lines += ["", f"`curvae fit` of {d['rows']:,} Beta targets, `.npy` → `.zarr` (best of {d['rounds']} interleaved "
              "rounds; the cluster's start is included):", "",
              "| run | seconds | targets/s | tasks | client peak RSS | each worker's peak RSS |", "|---|---|---|---|---|---|"]
    for mode, r in d["runs"].items():
        workers = ", ".join(f"{w:.0f}" for w in r["worker_peak_mib"]) + " MiB" if r["worker_peak_mib"] else "—"
        lines.append(f"| {mode} | {r['seconds']:.1f} | {d['targets_per_s'][mode]:,.0f} | {r['tasks'] or '—'} | "
                     f"{r['client_peak_mib']:.0f} MiB | {workers} |")
    q = d["quarter_rows"]
    lines += ["", f"- scaling efficiency of `local:2` over `local:1`: **{d['scaling_efficiency']:.0%}** (goal ≥ 80%)",
              f"- overhead of `local:1` over one process: **{d['overhead_local1']:+.0%}** (goal ≤ +15%)",
              f"- at {q['rows']:,} rows `local:2` peaked at {q['client_peak_mib']:.0f} MiB on the client and "
              f"{', '.join(f'{w:.0f}' for w in q['worker_peak_mib'])} MiB on the workers: memory is set by the "
              "rows per task, not the rows in all",
              f"- the three runs' summaries are identical: {'yes' if d['identical_summaries'] else 'NO'}",
              "", END]
    return "\n".join(lines)


def updated_page(page: str, summary: dict, begin: str = BEGIN, rendered: str | None = None) -> str:
    start, end = page.index(begin), page.index(END, page.index(begin)) + len(END)
    return page[:start] + (render(summary) if rendered is None else rendered) + page[end:]


def updated_scale_page(page: str, sc: dict) -> str:
    return updated_page(page, sc, SCALE_BEGIN, render_scale(sc))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)


def main() -> None:
    _write(PAGE, updated_page(PAGE.read_text(encoding="utf-8"), json.loads(RESULTS.read_text(encoding="utf-8"))))
    if SCALE_RESULTS.exists():
        _write(SCALE_PAGE, updated_scale_page(SCALE_PAGE.read_text(encoding="utf-8"),
                                              json.loads(SCALE_RESULTS.read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
