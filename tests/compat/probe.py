"""Run curvae's runtime on a bundle inside a compat venv (standalone script).

    python probe.py BUNDLE INPUTS.npz OUT.npz PROVIDERS STRICT [VARIANT]

Writes the encoder outputs for ``x_b{B}``/``eps_b{B}``, the decoder output
for ``z_b{B}``, ``model.sample(50, seed=7)``, a fit of ``targets``, and the
versions and node placement seen, or ``error`` with the one-line message
when the bundle is refused.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(bundle: str, inputs: str, out: str, providers: str, strict: str, variant: str = "") -> None:
    import click
    import scipy

    from curvae.runtime import CurvaeError, CurveModel
    from curvae.runtime.engine.onnxrt import installed_builds

    data = np.load(inputs, allow_pickle=False)
    result: dict[str, np.ndarray] = {}
    facts = {"numpy": np.__version__, "scipy": scipy.__version__, "click": click.__version__,
             "onnxruntime_builds": installed_builds()}
    try:
        import onnxruntime

        facts["onnxruntime"] = onnxruntime.__version__
        model = CurveModel.load(bundle, providers=providers, strict=strict == "strict", variant=variant or None)
        facts["placement"] = model.placement()
        for b in sorted(int(k[3:]) for k in data.files if k.startswith("z_b")):
            z, mu, logvar = model.encode_with_noise(data[f"x_b{b}"], data[f"eps_b{b}"])
            result.update({f"z_b{b}": z, f"mu_b{b}": mu, f"logvar_b{b}": logvar,
                           f"x_hat_b{b}": model.decode(data[f"z_b{b}"])})
        result["sample"] = model.sample(50, seed=7)
        fit = model.fit(data["targets"])
        result.update({"fit_z": fit.z, "fit_residual": fit.residual, "fit_success": fit.success})
    except CurvaeError as exc:
        result["error"] = np.array(f"{type(exc).__name__}: {exc}")
    result["facts"] = np.array(json.dumps(facts))
    np.savez(out, **result)


if __name__ == "__main__":
    main(*sys.argv[1:])
