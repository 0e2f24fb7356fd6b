"""Run a bundle's graphs on an engine that onnxruntime did not write (standalone script).

    python witness.py ENGINE GRAPH_DIR INPUTS.npz OUT.npz [VARIANT]

ENGINE is ``tract``, ``openvino`` (inference precision pinned to f32) or
``openvino-default`` (the engine's own precision choice for this CPU).
It reads ``x_b{B}``, ``eps_b{B}`` and ``z_b{B}`` for each batch B in the
inputs and writes ``z_b{B}``, ``mu_b{B}``, ``logvar_b{B}`` and ``x_hat_b{B}``
plus ``version``; a graph the engine refuses is written as ``error``.
This script needs only numpy and the engine: no curvae, no onnxruntime.
"""

from __future__ import annotations

import sys

import numpy as np


def _files(graph_dir: str, variant: str | None) -> tuple[str, str]:
    tag = f".{variant}" if variant else ""
    return f"{graph_dir}/encoder{tag}.onnx", f"{graph_dir}/decoder{tag}.onnx"


def tract_runner(path: str):
    import tract

    model = tract.onnx().load(path).into_model().into_runnable()

    def run(*arrays):
        return [t.to_numpy() for t in model.run(list(arrays))]

    return run, f"tract {tract.version()}"


def openvino_runner(path: str, pin_f32: bool = True):
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32"} if pin_f32 else {}
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)

    def run(*arrays):
        res = compiled(list(arrays))
        return [res[out] for out in compiled.outputs]

    return run, f"openvino {ov.get_version().split('-')[0]} (CPU, inference precision {precision})"


RUNNERS = {"tract": tract_runner, "openvino": openvino_runner,
           "openvino-default": lambda p: openvino_runner(p, pin_f32=False)}


def engine_version(engine: str) -> str:
    if engine == "tract":
        import tract

        return f"tract {tract.version()}"
    import openvino as ov

    return f"openvino {ov.get_version().split('-')[0]}"


def main(engine: str, graph_dir: str, inputs: str, out: str, variant: str | None = None) -> None:
    data = np.load(inputs, allow_pickle=False)
    batches = sorted(int(k[3:]) for k in data.files if k.startswith("z_b"))
    result: dict[str, np.ndarray] = {"version": np.array(engine_version(engine))}
    try:
        enc_path, dec_path = _files(graph_dir, variant)
        enc, version = RUNNERS[engine](enc_path)
        dec, _ = RUNNERS[engine](dec_path)
        result["version"] = np.array(version)
        for b in batches:
            z, mu, logvar = enc(data[f"x_b{b}"], data[f"eps_b{b}"])
            result.update({f"z_b{b}": z, f"mu_b{b}": mu, f"logvar_b{b}": logvar})
            (result[f"x_hat_b{b}"],) = dec(data[f"z_b{b}"])
    except Exception as exc:  # any engine failure is a result: "does not load this graph"
        lines = str(exc).strip().splitlines() or [""]
        result["error"] = np.array(f"{type(exc).__name__}: {lines[0][:300]}")
    np.savez(out, **result)


if __name__ == "__main__":
    main(*sys.argv[1:])
