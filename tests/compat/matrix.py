"""Render the compat tier's results into docs/portability.md (between its markers) and a JSON file."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

BEGIN, END = "<!-- compat:begin (written by the compat test tier; do not edit) -->", "<!-- compat:end -->"


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.1e}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def render(rows: list[dict], summary: str) -> str:
    lines = [BEGIN, "", f"Measured by `pytest -m compat` on {summary}.", ""]
    lines += ["### Runtimes and engines", "",
              "Each row: the largest |Δ| over every output element against the float64 evaluation of the same "
              "graph, and against the pinned onnxruntime CPU build. Pass: within 1e-5 + 1e-6·|value| of float64 "
              "(the export gate's rule), and for witnesses also within 1e-5 of onnxruntime CPU. A fit row compares "
              "the residual the fit reports with its float64 value and with the pinned build's residual.", "",
              "| runtime | version | bundle | graph | max \\|Δ\\| vs float64 | max \\|Δ\\| vs ORT CPU | pass |",
              "|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["table"] == "runtimes"):
        lines.append(f"| {_cell(r['runtime'])} | {_cell(r['version'])} | {r['bundle']} | {_cell(r['graph'])} | "
                     f"{_fmt(r['max_abs'])} | "
                     f"{_fmt(r['max_abs_ort'])} | {'pass' if r['passed'] else '**FAIL**'} |")
    lines += ["| onnxruntime-gpu, CUDA EP | — | — | — | — | — | not verified (no GPU in this run) |",
              "| onnxruntime-gpu, TensorRT EP | — | — | — | — | — | not verified (no GPU in this run) |", ""]
    lines += ["### Precision variants", "",
              "Which runtimes load the fp16 and int8 variants of the fresh bundle, and their largest |Δ| on decoded "
              "curves against the float32 graphs on onnxruntime CPU (batches 1, 7, 1000).", "",
              "| runtime | version | variant | loads | max \\|Δ x_hat\\| vs fp32 | note |", "|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["table"] == "variants"):
        lines.append(f"| {_cell(r['runtime'])} | {_cell(r['version'])} | {r['variant']} | "
                     f"{'yes' if r['loads'] else 'no'} | {_fmt(r['max_abs'])} | {_cell(r['note'])} |")
    opsets = [r for r in rows if r["table"] == "opsets"]
    if opsets:
        versions = list(opsets[0]["loads"])
        lines += ["", "### Oldest onnxruntime per opset", "",
                  "Graphs exported at each opset (with the IR version export writes for it), opened on each "
                  "onnxruntime release alone. The manifest's `min_onnxruntime` is the column before the releases.",
                  "", "| opset | IR | min_onnxruntime | " + " | ".join(versions) + " |",
                  "|---|---|---|" + "---|" * len(versions)]
        for r in opsets:
            cells = " | ".join("loads" if r["loads"][v] else "refused" for v in versions)
            lines.append(f"| {r['opset']} | {r['ir_version']} | {r['min_onnxruntime']} | {cells} |")
    lines += ["", END]
    return "\n".join(lines)


def write_matrix(rows: list[dict], docs: Path) -> None:
    summary = (f"{platform.machine()} {platform.system()}, Python {platform.python_version()}, "
               f"{os.cpu_count()} CPUs, {datetime.date.today().isoformat()}")
    page = docs / "portability.md"
    text = page.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        raise RuntimeError(f"{page} lacks the compat markers")
    new = text[:start] + render(rows, summary) + text[end + len(END):]
    for path, content in ((page, new), (docs / "portability-matrix.json",
                                        json.dumps({"machine": summary, "rows": rows}, indent=1) + "\n")):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
