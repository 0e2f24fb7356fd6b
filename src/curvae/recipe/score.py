"""The score a candidate is chosen by: the median fit residual of held-out curves, as users' fits see it."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from curvae.runtime.fitting.engine import fit_latent
from curvae.training.model import VAE


def held_out_fit_residual(model: VAE, curves: NDArray[np.float32]) -> float:
    """Median L2 residual of the runtime's default fit (Levenberg-Marquardt from the encoder's μ) of ``curves``.

    Parameters
    ----------
    model : VAE
        The run's shipped model (float32, on CPU).
    curves : ndarray of shape (n, n_points), float32
        Held-out curves: never the test curves, never the training curves.

    Returns
    -------
    float
        The median over the curves, in the data's own units. The fit is the runtime's own engine
        (:func:`curvae.runtime.fitting.engine.fit_latent`) over the torch decoder, so a candidate is scored by the
        error users get, not by its encoder alone (a network whose encoder lags can still decode better).
    """
    model = model.eval().cpu()
    x = np.ascontiguousarray(curves, dtype=np.float32)
    with torch.no_grad():
        z0 = model.posterior(torch.from_numpy(x))[0].numpy()

        def decode(z: NDArray[np.float32]) -> NDArray[np.float32]:  # (m, d) -> (m, P)
            return model.decode(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))).numpy()

        res = fit_latent(decode, x, z0)
    r = res.residual
    return float(np.median(np.where(np.isfinite(r), r, np.inf)))
