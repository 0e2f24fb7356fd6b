"""Posterior samples of z by MCMC (emcee's affine-invariant ensemble), for posteriors that are not Gaussian.

The log-posterior of a target with noise level σ is

    log p(z | y) = −½ Σ_p ((decode(z)_p − y_p)/σ_p)² − ½|z|² [prior] + const,

and every walker of a target is evaluated in one decoder call (emcee's
``vectorize=True``). The walkers start in a small ball around the
Levenberg-Marquardt optimum, scaled by its Laplace standard deviations. Needs
the ``[mcmc]`` extra (``pip install 'curvae[mcmc]'``).

When the noise is small against how fast the curve changes with z, the
posterior is close to Gaussian and the samples' mean and covariance agree
with the Laplace fit (``tests/unit/test_mcmc.py`` checks it); they differ
where the posterior is skewed or multi-modal, or near the edges of the
latent region the decoder learned, which is what MCMC is for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from curvae.core.errors import MissingRuntimeError
from curvae.core.seeding import Seed, entropy, row_rng


@dataclass(frozen=True)
class McmcOptions:
    """Walkers per target, steps, the burn-in dropped, and thinning of what is kept."""

    n_walkers: int = 16
    n_steps: int = 600
    burn: int = 200
    thin: int = 4

    @property
    def n_samples(self) -> int:
        """Samples kept per target (emcee keeps every ``thin``-th step after ``burn``)."""
        return self.n_walkers * ((self.n_steps - self.burn) // self.thin)


def _emcee():
    try:
        import emcee
    except ImportError:
        raise MissingRuntimeError("method='mcmc' needs emcee: pip install 'curvae[mcmc]'") from None
    return emcee


def sample_posterior(
    decode: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    targets: NDArray[np.float32],
    z_hat: NDArray[np.float32],
    z_std: NDArray[np.float64],
    sigma: NDArray[np.float64],
    *,
    prior: bool,
    options: McmcOptions = McmcOptions(),
    seed: Seed = None,
    row_offset: int = 0,
    box: float | None = None,
) -> NDArray[np.float32]:
    """Posterior samples of z for each target.

    Parameters
    ----------
    targets : ndarray of shape (n, P)
    z_hat, z_std : ndarray of shape (n, d)
        The optimum and its Laplace standard deviations (the starting ball).
    sigma : ndarray of shape (n, P)
        Noise level per target and point.
    box : float, optional
        A uniform prior on ``[-box, box]`` in every coordinate (walkers outside it are rejected).
    seed, row_offset : Seed, int
        Target ``i`` starts its walkers from ``(seed, row_offset + i)``, so its
        samples do not depend on which chunk of a larger set it came in.

    Returns
    -------
    ndarray of shape (n, m, d), float32
        ``m = n_walkers · (n_steps − burn) / thin`` samples per target.
    """
    emcee = _emcee()
    base = entropy(seed)
    n, d = z_hat.shape
    w = options.n_walkers
    out = []
    for i in range(n):
        t, s = targets[i].astype(np.float64), sigma[i]

        def log_prob(zs: NDArray[np.float64], t=t, s=s) -> NDArray[np.float64]:  # (w, d) -> (w,)
            x = decode(np.ascontiguousarray(zs, dtype=np.float32)).astype(np.float64)  # one call, all walkers
            lp = -0.5 * np.sum(((x - t) / s) ** 2, axis=1)
            if prior:
                lp -= 0.5 * np.sum(zs**2, axis=1)
            if box is not None:
                lp = np.where(np.all(np.abs(zs) <= box, axis=1), lp, -np.inf)
            return np.where(np.isfinite(lp), lp, -np.inf)

        g = row_rng(base, row_offset + i)
        scale = np.where(np.isfinite(z_std[i]) & (z_std[i] > 0), z_std[i], 1e-3)
        start = z_hat[i].astype(np.float64) + 0.1 * scale * g.standard_normal((w, d))
        if box is not None:  # every walker starts inside the prior's support
            start = np.clip(start, -box, box)
        sampler = emcee.EnsembleSampler(w, d, log_prob, vectorize=True)
        sampler.random_state = np.random.RandomState(int(g.integers(2**31))).get_state()
        sampler.run_mcmc(start, options.n_steps, progress=False)
        out.append(sampler.get_chain(discard=options.burn, thin=options.thin, flat=True))
    return np.asarray(out, dtype=np.float32)
