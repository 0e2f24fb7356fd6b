"""What a bundle records of its own error: the residuals of a default fit on held-out curves."""

from __future__ import annotations

import numpy as np

from curvae.runtime.bundle.records import FitResidualRecord
from curvae.runtime.fitting.engine import FitOptions, FitResult

#: Leading directions of the held-out residual curves kept in the manifest (the model's own error, its shape).
RESIDUAL_BASIS = 8


def _f32(values) -> tuple[float, ...]:
    return tuple(float(np.float32(v)) for v in np.ravel(values))


def residual_record(targets: np.ndarray, res: FitResult) -> FitResidualRecord:
    """The record of a default fit ``res`` of held-out ``targets`` (m, P): the out-of-family flag's reference, and
    the model's own error per point and in its leading directions (``FitResidualRecord``)."""
    ok = np.isfinite(res.residual)
    values = np.sort(res.residual[ok])
    r = np.asarray(targets, np.float64)[ok] - res.x_hat[ok].astype(np.float64)  # (m, P)
    u, sv, vt = np.linalg.svd(r, full_matrices=False)
    k = min(RESIDUAL_BASIS, len(sv))
    scores = u[:, :k] * sv[:k]
    rest = r - scores @ vt[:k]
    return FitResidualRecord(method=FitOptions.method, n_points=res.x_hat.shape[1],
                             values=tuple(float(v) for v in values),
                             point_rms=_f32(np.sqrt(np.mean(r ** 2, axis=0))), basis=tuple(_f32(v) for v in vt[:k]),
                             scores=tuple(_f32(s) for s in scores), rest_rms=_f32(np.sqrt(np.mean(rest ** 2, axis=0))))
