"""The ``curvae`` command line: each command parses options, calls one library function, prints."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from curvae import __version__
from curvae.core.errors import CurvaeError
from curvae.export.config import (  # the defaults and choices below: torch-free
    DEFAULT_BUDGETS,
    INT8_SCHEMES,
    ExportConfig,
)
from curvae.families import FAMILIES
from curvae.runtime.fit import FIT_INITS, MODEL_FIT_METHODS, FitOptions
from curvae.runtime.records import VARIANTS
from curvae.training.config import (  # noqa: I001
    DEFAULT_STEPS,
    SEED_MODEL,
    SEED_TRAIN,
    ACTIVATIONS,
    DEVICES,
    DataConfig,
    ModelConfig,
    TrainConfig,
)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


PROVIDERS_HELP = "Execution providers: 'auto' (all available, best first) or a comma list such as 'cuda,cpu'."
_TRAIN_HINT = "this command needs the training extra: pip install 'curvae[train]'"


class _Group(click.Group):
    """Turns curvae errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        # SIGTERM unwinds like Ctrl-C, so temporary outputs are removed and runs keep their last epoch.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return super().invoke(ctx)
        except CurvaeError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in ("torch", "onnx", "onnxscript"):
                click.echo(f"Error: {exc.name} is not installed; {_TRAIN_HINT}", err=True)
                sys.exit(1)
            raise
        except KeyboardInterrupt:
            click.echo("Error: interrupted; nothing partial was written", err=True)
            sys.exit(130)


def _load(model: str, providers: str, strict: bool = False, variant: str | None = None, threads: int | None = None):
    from curvae.runtime.model import CurveModel

    return CurveModel.load(model, providers=providers, strict=strict, variant=variant, threads=threads)


def _scale_options(f):
    """--dask, --chunk-rows and --threads, for the commands that stream rows (encode, decode, fit)."""
    f = click.option("--threads", type=click.IntRange(min=1),
                     help="onnxruntime intra-op threads (per task with --dask; default: cores // N on local:N, "
                          "1 on a cluster, all cores without --dask).")(f)
    f = click.option("--chunk-rows", type=click.IntRange(min=1),
                     help="Rows per chunk (per task with --dask); default: 4096 (16384 into a .zarr), or about 4 tasks "
                          "per Dask worker.")(f)
    return click.option("--dask", "dask", metavar="ADDRESS",
                        help="Run on a Dask cluster: a scheduler address (tcp://host:8786) or local[:N] for N local "
                             "worker processes; needs curvae[dask]. Results are identical to a run without it.")(f)


def _progress(label: str):
    """A progress callback ``(done, total)`` drawing a click bar on stderr, and a function that closes it."""
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    def close() -> None:
        if bar is not None:
            bar.__exit__(None, None, None)

    return update, close


def _print_cluster(res: dict) -> None:
    if res.get("note"):
        click.echo(f"note: {res['note']}")
    if res.get("workers"):
        mem = res.get("worker_peak_rss_mib") or []
        peak = f"; workers' peak memory {min(mem):.0f}-{max(mem):.0f} MiB" if mem else ""
        click.echo(f"ran {res['tasks']} task{'' if res['tasks'] == 1 else 's'} on {res['workers']} Dask "
                   f"worker{'' if res['workers'] == 1 else 's'}{peak}")


def _runtime_options(f):
    """--providers, --strict and --variant, for every command that runs graphs."""
    f = click.option("--variant", type=click.Choice(VARIANTS),
                     help="Run a precision variant of the bundle instead of its float32 graphs.")(f)
    f = click.option("--strict", is_flag=True,
                     help="Fail unless every node of both graphs runs on the first requested provider "
                          "(no silent CPU fallback; checked with onnxruntime's profiler).")(f)
    return click.option("--providers", default="auto", show_default=True, help=PROVIDERS_HELP)(f)


def _force_option(f):
    return click.option("--force", is_flag=True, help="Replace --out if it exists.")(f)


def _epoch_printer(total: int | None = None, start: int | None = 0):
    """A click progress bar fed by the training loop's per-epoch callback, opened at the first epoch.

    ``start=None`` takes the first reported epoch as the starting point (resume).
    """
    bar = None

    def on_epoch(row: dict) -> None:
        nonlocal bar
        if bar is None:
            first = row["epoch"] - 1 if start is None else start
            end = row.get("rounds", total) if total is None else total
            bar = click.progressbar(length=end - first, label=f"training ({row.get('budget', 'budget')})",
                                    file=sys.stderr, show_pos=True,
                                    item_show_func=lambda r: r and f"epoch {r['epoch']} recon {r['recon']:.4f} "
                                                                   f"kl {r['kl']:.3f} held-out {r['val_recon']:.4f}")
            bar.__enter__()
        bar.update(1, row)
        if bar.pos >= bar.length:
            bar.__exit__(None, None, None)

    return on_epoch


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="curvae")
def main() -> None:
    """Learn a latent space of curves, export it to ONNX, fit curves anywhere."""


@main.command()
@click.option("--family", default=DataConfig.family, show_default=True,
              help=f"Built-in family: {', '.join(sorted(FAMILIES))} (ignored with --data).")
@click.option("--data", type=click.Path(dir_okay=False), help="Your own curves: .npy, .npz (key 'curves') or .csv.")
@click.option("--n-curves", default=DataConfig.n_curves, show_default=True, type=int,
              help="Curves drawn from the family.")
@click.option("--steps", type=int,
              help=f"Optimiser steps, whatever the data size [default: {DEFAULT_STEPS:,}].")
@click.option("--epochs", type=int, help="Passes over the curves instead of a step budget.")
@click.option("--preset", type=click.Choice(["default", "seed"]), default="default", show_default=True,
              help="seed: the worked example's plain MLPs, per-point scaling, SSE loss, 100 epochs.")
@click.option("--header", type=click.Choice(["auto", "grid", "names", "none"]), default="auto", show_default=True,
              help="A data file's first row: auto-detect, x values (grid), column names, or a curve.")
@click.option("--batch-size", default=TrainConfig.batch_size, show_default=True, type=int, help="Curves per Adam step.")
@click.option("--lr", type=float, help=f"Peak learning rate (Adam) [default: {TrainConfig.lr:g}; seed 1e-2].")
@click.option("--lr-final", type=float,
              help=f"Learning rate at the last step [default: {TrainConfig.lr_final:g}; seed 5e-5].")
@click.option("--warmup-epochs", default=TrainConfig.warmup_epochs, show_default=True, type=int,
              help="Linear warm-up to --lr, then exponential decay to --lr-final.")
@click.option("--beta", default=TrainConfig.beta, show_default=True, type=float,
              help="Weight of the KL term (the calibrated loss needs no tuning of it).")
@click.option("--kl-warmup-epochs", default=TrainConfig.kl_warmup_epochs, show_default=True, type=int,
              help="Ramp the KL weight up from 0 over this many epochs.")
@click.option("--ema", default=TrainConfig.ema, show_default=True, type=float,
              help="Decay of the weight average that is written as the model; 0 writes the last weights.")
@click.option("--adam-beta2", default=TrainConfig.adam_beta2, show_default=True, type=float,
              help="Decay of Adam's second-moment estimate.")
@click.option("--threads", default=TrainConfig.threads, show_default=True, type=int,
              help="torch threads while training on CPU (0: one per core).")
@click.option("--latent-dim", default=ModelConfig.latent_dim, show_default=True, type=int, help="Size of the code z.")
@click.option("--hidden", default=ModelConfig.hidden, show_default=True, type=int, help="Width of each hidden layer.")
@click.option("--depth", default=ModelConfig.depth, show_default=True, type=int,
              help="Hidden layers in encoder and decoder.")
@click.option("--activation", default=ModelConfig.activation, show_default=True, type=click.Choice(ACTIVATIONS),
              help="Hidden-layer activation.")
@click.option("--linear-path/--no-linear-path", default=None,
              help="An affine path started at PCA beside each MLP [default: on; seed: off].")
@click.option("--scaling", type=click.Choice(["global", "per-point"]),
              help="Divide the centred curves by one scale or by each point's [default: global; seed: per-point].")
@click.option("--loss", type=click.Choice(["calibrated", "sse"]),
              help="(P/2)·log(MSE) + β·KL, or the seed's SSE + β·KL [default: calibrated; seed: sse].")
@click.option("--val-fraction", default=DataConfig.val_fraction, show_default=True, type=float,
              help="Held-out share of the curves, reported every epoch.")
@click.option("--device", default=TrainConfig.device, show_default=True, type=click.Choice(DEVICES),
              help="auto takes CUDA when torch sees it.")
@click.option("--seed", default=TrainConfig.seed, show_default=True, type=int,
              help="The same seed gives the same losses and weights on CPU.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder to write (required unless --resume).")
@click.option("--resume", "resume_run", type=click.Path(file_okay=False),
              help="Continue this stopped, interrupted or failed run from its checkpoint (its own config is used).")
@click.option("--stop-after", type=click.IntRange(min=1), help="Stop after this epoch; --resume continues it.")
@_force_option
def train(family, data, n_curves, steps, epochs, preset, header, batch_size, lr, lr_final, warmup_epochs, beta,
          kl_warmup_epochs, ema, adam_beta2, threads, latent_dim, hidden, depth, activation, linear_path, scaling,
          loss, val_fraction, device, seed, out, resume_run, stop_after, force) -> None:
    """Train a VAE on a curve family or your own curves, or resume a run."""
    from curvae.training.config import RunConfig
    from curvae.training.loop import resume
    from curvae.training.loop import train as train_run

    if resume_run:
        from curvae.training.run import load_checkpoint

        s = resume(resume_run, out=out, on_epoch=_epoch_printer(start=None), stop_after=stop_after)
        _print_run(out or resume_run, s)
        return
    if not out:
        raise click.UsageError("--out is required (or pass --resume RUN)")
    base_model, base_train = (SEED_MODEL, SEED_TRAIN) if preset == "seed" else ({}, {})
    if steps is not None:
        base_train = {k: v for k, v in base_train.items() if k != "epochs"}
    given = lambda **kw: {k: v for k, v in kw.items() if v is not None}  # noqa: E731
    cfg = RunConfig(
        data=DataConfig(family=family, n_curves=n_curves, data=data, val_fraction=val_fraction, header=header),
        model=ModelConfig(**{"latent_dim": latent_dim, "hidden": hidden, "depth": depth, **base_model,
                             **({"activation": activation} if activation != ModelConfig.activation else {}),
                             **given(linear_path=linear_path, scaling=scaling)}),
        train=TrainConfig(**{**base_train, **given(steps=steps, epochs=epochs, lr=lr, lr_final=lr_final, loss=loss),
                             "batch_size": batch_size, "warmup_epochs": warmup_epochs, "beta": beta,
                             "kl_warmup_epochs": kl_warmup_epochs, "ema": ema, "adam_beta2": adam_beta2,
                             "threads": threads, "device": device, "seed": seed}),
    )
    s = train_run(cfg, out, force=force, on_epoch=_epoch_printer(stop_after), stop_after=stop_after)
    _print_run(out, s)


def pca_line(pca: dict, model_rmse: float) -> str:
    """One line comparing the model with PCA at the same size on the held-out curves."""
    d, rmse, k = pca["latent_dim"], pca["val_rmse"], pca.get("components_to_match")
    worth = f"PCA needs {k} components to match it" if k is not None else "PCA needs more than 64 components to match it"
    verdict = (f"PCA with {d} components is as good as the model ({rmse:.4g}): a linear basis is enough here"
               if rmse <= model_rmse else f"{worth} ({rmse / max(model_rmse, 1e-30):.1f}x the model's error at {d})")
    return f"baseline: held-out RMSE model {model_rmse:.4g}, PCA at d={d} {rmse:.4g}; {verdict}"


def _print_run(out: str, s: dict) -> None:
    f = s["final"]
    fam = s.get("family") or {}
    if fam.get("grid_from_first_row"):
        click.echo(f"read the first row of {fam.get('source')} as the grid (x values), not as a curve; "
                   "--header none reads it as a curve")
    click.echo(f"run {out} ({s['status']}): {s['n_train']} train / {s['n_val']} held-out curves, "
               f"{s['epochs_done']} of {s['epochs']} rounds ({s.get('budget', str(s['epochs']) + ' epochs')}) "
               f"on {s['device']} in {s['seconds']:.1f}s; "
               f"recon {f['recon']:.4f}, KL {f['kl']:.3f}, held-out SSE {f['val_recon']:.4f} (RMSE {f['val_rmse']:.4f})")
    if s.get("far_rows"):
        click.echo("warning: curves far outside the others, in robust units: "
                   + ", ".join(f"row {r} ({d:.0f}x the median distance)" for r, d in s["far_rows"])
                   + f" of {fam.get('source')}; check them", err=True)
    pca = s.get("pca")
    if pca:
        click.echo(pca_line(pca, f["val_rmse"]))


@main.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")
@click.option("--opset", default=ExportConfig.opset, show_default=True, type=int,
              help="Default-domain opset, 7..23; the IR version written is the lowest it needs (18: onnxruntime >= 1.14).")
@click.option("--atol", default=ExportConfig.atol, show_default=True, type=float,
              help="Max abs torch-vs-ONNX difference.")
@click.option("--rtol", default=ExportConfig.rtol, show_default=True, type=float,
              help="Plus this times |torch| per element (float32 rounding on large values); 0 for pure atol.")
@click.option("--dtype", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="fp16 also writes an fp16 variant (float32 inputs and outputs kept).")
@click.option("--quantize", type=click.Choice(["none", "int8"]), default="none", show_default=True,
              help="int8 also writes a dynamically quantised variant.")
@click.option("--fp16-budget", default=DEFAULT_BUDGETS["fp16"], show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Largest accepted |fp16 - fp32| on decoded curves.")
@click.option("--int8-budget", default=DEFAULT_BUDGETS["int8"], show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Largest accepted |int8 - fp32| on decoded curves, on this CPU and every integer kernel.")
@click.option("--int8-scheme", type=click.Choice(list(INT8_SCHEMES)), default=ExportConfig.int8_scheme,
              show_default=True, help="u8u8: exact sums on every CPU; u8s7: 7-bit weights, faster with VNNI.")
@click.option("--held-out", default=ExportConfig.held_out, show_default=True, type=int,
              help="Held-out curves of your data kept (hashed) in the manifest for reports; 0 for private data.")
@_force_option
def export(run, out, opset, atol, rtol, dtype, quantize, fp16_budget, int8_budget, int8_scheme, held_out,
           force) -> None:
    """Export a run as an ONNX bundle (encoder.onnx, decoder.onnx, manifest.json)."""
    from curvae.training.export_run import export_run

    variants = {**({"fp16": fp16_budget} if dtype == "fp16" else {}),
                **({"int8": int8_budget} if quantize == "int8" else {})}
    res = export_run(run, out, config=ExportConfig(opset=opset, atol=atol, rtol=rtol, int8_scheme=int8_scheme,
                                          held_out=held_out), force=force,
                     variants=variants or None)
    p = res.manifest.parity
    click.echo(f"bundle {out}: parity passed on batches {list(p.batches)} ({', '.join(p.providers)}): "
               f"max abs {p.max_abs:.2e}, max rel {p.max_rel:.2e} (atol {atol:g}, rtol {rtol:g}, "
               f"float32 noise {p.float32_noise:.1e})")
    if res.manifest.baseline is not None:
        click.echo(f"baseline: {res.manifest.baseline.summary()}")
    for name, v in res.manifest.variants.items():
        click.echo(f"variant {name}: max |{name} - fp32| {v.max_abs['x_hat']:.3g} (budget {v.budget:g}), "
                   f"decode {v.decode_rows_per_s / 1e6:.2f}M rows/s vs fp32 {v.fp32_decode_rows_per_s / 1e6:.2f}M, "
                   f"fit residual median {v.fit_residual_median:.4f} vs fp32 {v.fp32_fit_residual_median:.4f}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.option("--run", "run", type=click.Path(file_okay=False), help="Also check parity against this run.")
@_runtime_options
def check(model, run, providers, strict, variant) -> None:
    """Verify a bundle's integrity and where its nodes run; with --run, its parity on every provider."""
    from curvae.apps.check import check_bundle

    report = check_bundle(model, run=run, providers=providers, strict=strict, variant=variant)
    for line in report.lines():
        click.echo(line)
    report.verdict()


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@_runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(model, providers, strict, variant, as_json) -> None:
    """Show a bundle's manifest summary and the providers it runs on."""
    from curvae.runtime.files import describe

    d = describe(_load(model, providers, strict, variant))
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    for key, val in d.items():
        if key == "baseline" and val:
            val = val["verdict"]
        click.echo(f"{key:>20}: {json.dumps(val) if isinstance(val, (dict, list)) else val}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("curves", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Codes to write: .npy, .npz (key z) or .zarr.")
@click.option("--sample", is_flag=True, help="Draw z = mu + sigma*eps instead of returning mu.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of eps with --sample.")
@_scale_options
@_runtime_options
@_force_option
def encode(model, curves, out, sample, seed, dask, chunk_rows, threads, providers, strict, variant, force) -> None:
    """Encode curves (.npy, .zarr, .npz or .csv) to latent codes."""
    bar, close = _progress("encoding")
    try:
        if dask:
            from curvae.scale.jobs import encode_job

            res = encode_job(_load(model, providers, strict, variant), curves, out, dask=dask, sample=sample,
                             seed=seed, force=force, chunk_rows=chunk_rows, threads=threads, progress=bar)
        else:
            from curvae.runtime.files import encode_file

            res = {"shape": encode_file(_load(model, providers, strict, variant, threads), curves, out, sample=sample,
                                        seed=seed, force=force, chunk=chunk_rows)}
    finally:
        close()
    _print_cluster(res)
    click.echo(f"wrote {out}: codes of shape {res['shape']}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("codes", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Curves to write: .npy, .npz (key curves) or .zarr.")
@_scale_options
@_runtime_options
@_force_option
def decode(model, codes, out, dask, chunk_rows, threads, providers, strict, variant, force) -> None:
    """Decode latent codes (.npy, .zarr, .csv, or .npz key 'z') to curves."""
    bar, close = _progress("decoding")
    try:
        if dask:
            from curvae.scale.jobs import decode_job

            res = decode_job(_load(model, providers, strict, variant), codes, out, dask=dask, force=force,
                             chunk_rows=chunk_rows, threads=threads, progress=bar)
        else:
            from curvae.runtime.files import decode_file

            res = {"shape": decode_file(_load(model, providers, strict, variant, threads), codes, out, force=force,
                                        chunk=chunk_rows)}
    finally:
        close()
    _print_cluster(res)
    click.echo(f"wrote {out}: curves of shape {res['shape']}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.option("-n", "n", required=True, type=click.IntRange(min=1), help="Number of curves.")
@click.option("--seed", type=int, help="Seeds the prior draws.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Curves .npy to write.")
@_runtime_options
@_force_option
def sample(model, n, seed, out, providers, strict, variant, force) -> None:
    """Draw codes from the N(0, I) prior and decode them."""
    from curvae.runtime.files import sample_file

    curves = sample_file(_load(model, providers, strict, variant), n, out, seed=seed, force=force)
    click.echo(f"wrote {out}: curves of shape {curves.shape}")


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
@_scale_options
@_runtime_options
@_force_option
def fit(model, targets, out, method, init, n_starts, seed, max_iter, prior_weight, bound, sigma, sigma_file,
        ood_quantile, no_uncertainty, target_grid, clip_range, id_col, x_col, y_col, skip_bad_rows, header, dask,
        chunk_rows, threads, providers, strict, variant, force) -> None:
    """Fit latent codes to target curves, with their uncertainty and an out-of-family flag.

    Targets may miss points (NaN), sit on a grid of their own (.npz key 'grid' or --grid), or come as a
    long-format CSV with a header id,x,y (one curve per id, each with its own x).

    Writes z, residual, success, nfev, message and x_hat, and (unless --no-uncertainty) cov, z_std,
    sigma, chi2, band_lo, band_hi (the true curve), band_z_lo, band_z_hi (z only), ill_conditioned, ood,
    ood_threshold and ood_reason.
    """
    from curvae.runtime.files import fit_file, load_sigma

    kw = dict(force=force, method=method, init=init, n_starts=n_starts, seed=seed, max_iter=max_iter,
              prior_weight=prior_weight, bound=bound, uncertainty=not no_uncertainty,
              sigma=load_sigma(sigma, sigma_file), ood_quantile=ood_quantile, grid=target_grid,
              skip_bad_rows=skip_bad_rows)
    bar, close = _progress("fitting")
    try:
        if dask:
            from curvae.scale.jobs import fit_job

            res = fit_job(_load(model, providers, strict, variant), targets, out, dask=dask, chunk_rows=chunk_rows,
                          threads=threads, progress=bar, **kw)
        else:
            res = fit_file(_load(model, providers, strict, variant, threads), targets, out, progress=bar,
                           chunk=chunk_rows, clip_range=clip_range, columns=(id_col, x_col, y_col),
                           header=header, **kw)
    finally:
        close()
    _print_cluster(res)
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


@main.command()
@click.argument("source", type=click.Path(file_okay=False))
@click.option("--targets", type=click.Path(dir_okay=False), help="Curves to fit (default: fresh family curves).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the fresh curves.")
@_force_option
def report(source, targets, out, seed, force) -> None:
    """Write figures and an index.html for a bundle, a run or a demo folder."""
    from curvae.apps.report_source import report_source

    n = report_source(source, out, targets=targets, seed=seed, force=force)
    click.echo(f"wrote {out}/index.html with {len(n['figures'])} figures; fit residual median "
               f"{n['fit']['residual_median']:.4f}, p90 {n['fit']['residual_p90']:.4f}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback needs --allow-host.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A Host name clients use to reach a non-loopback --host (repeat for each).")
@click.option("--web", type=click.Path(file_okay=False),
              help="A page folder laid out like examples/web, for development (default: the installed page).")
def explore(model, port, host, allow_hosts, web) -> None:
    """Serve the browser explorer for a bundle (onnxruntime-web, offline); Ctrl-C stops it."""
    from curvae.apps.explore import make_server, url_of

    server = make_server(model, web=web, host=host, port=port, allow_hosts=tuple(allow_hosts))
    if server.server_address[0] not in ("127.0.0.1", "::1"):
        click.echo(f"warning: serving on {host}: anyone who can reach this port can read the bundle "
                   f"(answering to {', '.join(allow_hosts)})", err=True)
    click.echo(f"curvae explorer for {model}: open {url_of(server)}  (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


@main.command()
@click.option("--out", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the run, the bundle, the fits and the report.")
@click.option("--n-targets", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Fresh Beta curves to fit.")
@click.option("--epochs", default=None, type=click.IntRange(min=1), help="Override the default recipe's epochs.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the training run and the fresh targets.")
@_force_option
def demo(out, n_targets, epochs, seed, force) -> None:
    """Run the worked example: train on Beta, export with parity, encode, sample, fit."""
    from curvae.apps.demo import format_summary, run_demo
    from curvae.training.config import RunConfig

    tc = TrainConfig(seed=seed) if epochs is None else TrainConfig(seed=seed, epochs=epochs)
    s = run_demo(out, n_targets=n_targets, seed=seed, force=force, config=RunConfig(train=tc),
                 on_epoch=_epoch_printer())
    click.echo(format_summary(s, out))


if __name__ == "__main__":
    main()
