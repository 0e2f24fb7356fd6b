"""Which onnxruntime can run which graph: the opset and IR version tables, in one place.

Export writes the lowest IR version the chosen opset needs, so a bundle asks
no more of a runtime than its operators do; the manifest records the oldest
onnxruntime that can run it, and :func:`check_onnxruntime` compares that
with the installed build before any session is created.
"""

from __future__ import annotations

import re

from curvae.core.errors import MissingRuntimeError

#: Lowest IR version each default-domain opset needs (onnx's own VERSION_TABLE), but at
#: least 4: from IR 4 on, initializers need not be listed as graph inputs.
IR_FOR_OPSET = {7: 4, 8: 4, 9: 4, 10: 5, 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8,
                19: 9, 20: 9, 21: 10, 22: 10, 23: 11}

#: First onnxruntime release that implements each opset (onnxruntime's compatibility table;
#: 1.15 onwards checked by the compat test tier). Opsets below 12 run on every 1.x release.
ORT_FOR_OPSET = {12: (1, 3), 13: (1, 6), 14: (1, 8), 15: (1, 9), 16: (1, 11), 17: (1, 12), 18: (1, 14),
                 19: (1, 15), 20: (1, 17), 21: (1, 18), 22: (1, 21), 23: (1, 23)}

#: First onnxruntime release that reads each IR version.
ORT_FOR_IR = {7: (1, 3), 8: (1, 10), 9: (1, 15), 10: (1, 18), 11: (1, 23)}

MIN_OPSET, MAX_OPSET = min(IR_FOR_OPSET), max(IR_FOR_OPSET)


def parse_version(text: str) -> tuple[int, ...]:
    """``"1.18.0"``, ``"1.20.0.dev20240101"`` or ``"1.17.1+cu118"`` → ``(1, 18, 0)``."""
    m = re.match(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(p) for p in m.groups(default="0"))


def format_version(v: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in v)


def min_ir_version(opset: int) -> int:
    """The IR version export writes for ``opset``."""
    return IR_FOR_OPSET.get(opset, max(IR_FOR_OPSET.values()) if opset > MAX_OPSET else 4)


def min_onnxruntime(opset: int, ir_version: int) -> str:
    """Oldest onnxruntime release that runs a graph of this default-domain opset and IR version."""
    need = (1, 0)
    for table, key in ((ORT_FOR_OPSET, opset), (ORT_FOR_IR, ir_version)):
        known = [k for k in table if k <= key]
        if known:
            need = max(need, table[max(known)])
    return format_version(need)


def check_onnxruntime(installed: str, needed: str, *, what: str) -> None:
    """Refuse to go on when the installed onnxruntime is older than ``needed``.

    Raises
    ------
    MissingRuntimeError
        Naming both versions and the two fixes that work: a newer
        onnxruntime, or a re-export at a lower opset.
    """
    if parse_version(installed) >= parse_version(needed):
        return
    raise MissingRuntimeError(
        f"{what} needs onnxruntime >= {needed} but {installed} is installed; upgrade the build you use "
        f"(e.g. pip install -U 'onnxruntime>={needed}'), or re-export the run with this curvae, which writes "
        f"the lowest IR version each opset needs (`curvae export RUN --out DIR --opset 18` runs on "
        f"onnxruntime >= {min_onnxruntime(18, min_ir_version(18))}, --opset 13 on >= "
        f"{min_onnxruntime(13, min_ir_version(13))})"
    )
