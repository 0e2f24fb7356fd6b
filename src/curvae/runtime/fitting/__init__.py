"""Fitting latent codes to targets: the engine, observations, uncertainty, MCMC, and the orchestration.

- ``engine``: :class:`FitResult`, :class:`FitOptions`, the batched Levenberg-Marquardt engine and the scipy
  methods; the Jacobian of a fit is the engine's last forward-difference probe (``fit_with_jacobian``);
- ``observations``: targets with missing points or on their own grids;
- ``uncertainty``: the Laplace covariance, the bands and the out-of-family flag;
- ``mcmc``: posterior samples around the optimum (emcee);
- ``orchestrate``: what :meth:`CurveModel.fit` does with a chunk of targets (start, engine, uncertainty, MCMC).
"""
