"""`curvae fit`: latent codes for target curves, with their uncertainty and an out-of-family flag."""

from __future__ import annotations

import click

from curvae.cli.common import (
    force_option,
    load_model,
    main,
    print_cluster,
    progress,
    runtime_options,
    scale_options,
)
from curvae.runtime.fitting.engine import FIT_INITS, MODEL_FIT_METHODS, FitOptions


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("targets", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Results to write: .npz or .zarr.")
@click.option("--method", default=FitOptions.method, show_default=True, type=click.Choice(MODEL_FIT_METHODS),
              help="lm: batched Levenberg-Marquardt; nelder-mead, least-squares: scipy per target; "
                   "mcmc: lm, then posterior samples (needs the mcmc extra).")
@click.option("--init", default=FitOptions.init, show_default=True, type=click.Choice(FIT_INITS),
              help="Start from the encoder's mu, or from z = 0.")
@click.option("--n-starts", default=FitOptions.n_starts, show_default=True, type=click.IntRange(min=1),
              help="Extra starts drawn from the prior; the best fit is kept.")
@click.option("--seed", type=int, help="Seed of the extra starts and of the MCMC walkers.")
@click.option("--max-iter", default=FitOptions.max_iter, show_default=True, type=click.IntRange(min=1),
              help="Iteration cap (per target for the scipy methods).")
@click.option("--prior-weight", default=FitOptions.prior_weight, show_default=True, type=click.FloatRange(min=0),
              help="Adds W*|z|^2 to the cost (a Gaussian prior on z).")
@click.option("--bound", type=click.FloatRange(min=0, min_open=True), help="Keep |z_i| <= bound.")
@click.option("--sigma", type=float, help="Noise level of the targets (one value); default: estimated per target.")
@click.option("--sigma-file", type=click.Path(dir_okay=False),
              help="Noise level per curve point: a .npy or .csv of n_points values.")
@click.option("--ood-quantile", default=0.99, show_default=True, type=float,
              help="Flag a target out of family above this quantile of the held-out residuals.")
@click.option("--no-uncertainty", is_flag=True, help="Skip covariance, bands and the out-of-family flag.")
@click.option("--no-params", is_flag=True, help="Skip the curves' parameters (theta), for a bundle with a parameter head.")
@click.option("--space", type=click.Choice(["z", "theta"]), default="z", show_default=True,
              help="Fit the latent code z, or the curve's parameters theta through the bundle's emulator (inside the "
                   "training range; its theta intervals are the fit's own).")
@click.option("--grid", "target_grid", type=click.Path(dir_okay=False),
              help="The targets' own x values (.npy or .csv), when they are not on the model's grid.")
@click.option("--clip-range", is_flag=True, help="Drop target points outside the model's grid instead of refusing.")
@click.option("--id-col", default="id", show_default=True, help="Long-format CSV: the column of curve ids.")
@click.option("--x-col", default="x", show_default=True, help="Long-format CSV: the column of x values.")
@click.option("--y-col", default="y", show_default=True, help="Long-format CSV: the column of values.")
@click.option("--skip-bad-rows", is_flag=True,
              help="Record rows that cannot be fitted (inf, too few points) as not fitted, with their reason, "
                   "instead of stopping at the first.")
@click.option("--header", type=click.Choice(["auto", "grid", "names", "none"]), default="auto", show_default=True,
              help="A wide .csv/.npz's first row: auto-detect, the targets' x values (grid), column names, or a curve.")
@scale_options
@runtime_options
@force_option
def fit(model, targets, out, method, init, n_starts, seed, max_iter, prior_weight, bound, sigma, sigma_file,
        ood_quantile, no_uncertainty, no_params, space, target_grid, clip_range, id_col, x_col, y_col, skip_bad_rows, header, dask,
        chunk_rows, threads, providers, strict, variant, force) -> None:
    """Fit latent codes to target curves, with their uncertainty and an out-of-family flag.

    Targets may miss points (NaN), sit on a grid of their own (.npz key 'grid' or --grid), or come as a
    long-format CSV with a header id,x,y (one curve per id, each with its own x).

    Writes z, residual, success, nfev, message and x_hat, and (unless --no-uncertainty) cov, z_std,
    sigma, chi2, band_lo, band_hi (the true curve), band_z_lo, band_z_hi (z only), ill_conditioned, ood,
    ood_threshold and ood_reason. A bundle with a parameter head adds theta, with param_names naming its
    columns, and (with uncertainty) theta_std, theta_lo, theta_hi (95%) and theta_cov. With --space theta,
    theta and its intervals come from a fit over the parameters themselves (no cov or z_std; z is the code
    the emulator decodes from; --method mcmc samples theta under a uniform prior on the training range).
    """
    from curvae.io.files import fit_file, load_sigma

    kw = dict(force=force, method=method, init=init, n_starts=n_starts, seed=seed, max_iter=max_iter,
              prior_weight=prior_weight, bound=bound, uncertainty=not no_uncertainty,
              sigma=load_sigma(sigma, sigma_file), ood_quantile=ood_quantile, grid=target_grid,
              skip_bad_rows=skip_bad_rows, params=not no_params, space=space)
    bar, close = progress("fitting")
    try:
        if dask:
            from curvae.scale.jobs import fit_job

            res = fit_job(load_model(model, providers, strict, variant), targets, out, dask=dask, chunk_rows=chunk_rows,
                          threads=threads, progress=bar, **kw)
        else:
            res = fit_file(load_model(model, providers, strict, variant, threads), targets, out, progress=bar,
                           chunk=chunk_rows, clip_range=clip_range, columns=(id_col, x_col, y_col),
                           header=header, **kw)
    finally:
        close()
    print_cluster(res)
    if res["header"]:
        click.echo(f"read {targets} as {res['kind']}, with a header row: {', '.join(res['header'])[:120]}")
    if res["dropped"]:
        click.echo(f"--clip-range dropped {res['dropped']} point{'' if res['dropped'] == 1 else 's'} outside the "
                   f"model's grid")
    ood = "" if res.get("n_ood") is None else f"; {res['n_ood']} out of family"
    if res.get("n_skipped"):
        row, why = res["skipped_first"]
        ood += f"; {res['n_skipped']} bad row{'' if res['n_skipped'] == 1 else 's'} skipped (first: row {row}: {why})"
    click.echo(f"wrote {out}: {res['n']} fit{'' if res['n'] == 1 else 's'}, {res['n_success']} succeeded; residual "
               f"median {res['residual_median']:.4g}, p90 {res['residual_p90']:.4g}{ood}")
