"""`curvae train` and `curvae export`: a run folder from curves, a bundle from a run."""

from __future__ import annotations

import click

from curvae.cli.common import (
    epoch_printer,
    force_option,
    main,
    search_printer,
)
from curvae.export.config import (  # the defaults and choices below: torch-free
    DEFAULT_BUDGETS,
    INT8_SCHEMES,
    ExportConfig,
)
from curvae.families import FAMILIES
from curvae.recipe.config import DEFAULT_BUDGET_SECONDS, PRESETS
from curvae.training.checkpoints import DEFAULT_CHECKPOINT_SECONDS  # torch-free
from curvae.training.config import (
    ACTIVATIONS,
    DEFAULT_STEPS,
    DEVICES,
    SEED_MODEL,
    SEED_TRAIN,
    DataConfig,
    ModelConfig,
    TrainConfig,
)


@main.command()
@click.option("--family", default=DataConfig.family, show_default=True,
              help=f"Built-in family: {', '.join(sorted(FAMILIES))} (ignored with --data).")
@click.option("--data", type=click.Path(), help="Your own curves: .npy, .npz (key 'curves'), .csv or .zarr.")
@click.option("--n-curves", default=DataConfig.n_curves, show_default=True, type=int,
              help="Curves drawn from the family.")
@click.option("--steps", type=int,
              help=f"Optimiser steps, whatever the data size [default: {DEFAULT_STEPS:,}].")
@click.option("--epochs", type=int, help="Passes over the curves instead of a step budget.")
@click.option("--preset", type=click.Choice(PRESETS), default="auto", show_default=True,
              help="auto: choose the network from the data (capacity search on the held-out split, within "
                   "--budget); fast: one depth-1 ReLU network, the recipe before the search; seed: the worked "
                   "example's plain MLPs, per-point scaling, SSE loss, 100 epochs. --depth, --hidden or "
                   "--activation also fix the network.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_BUDGET_SECONDS,
              show_default=True, help="Seconds the capacity search may spend training (--preset auto).")
@click.option("--header", type=click.Choice(["auto", "grid", "names", "none"]), default="auto", show_default=True,
              help="A data file's first row: auto-detect, x values (grid), column names, or a curve.")
@click.option("--stream", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Read a .npy/.zarr data file by blocks, never whole (auto: above 256 MiB); see docs/scale.md.")
@click.option("--batch-size", type=int, help=f"Curves per Adam step [default: {TrainConfig.batch_size}; the capacity "
                                             "search gives each candidate its own].")
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
@click.option("--hidden", type=int, help=f"Width of each hidden layer [default: {ModelConfig.hidden}, or searched].")
@click.option("--depth", type=int, help=f"Hidden layers in encoder and decoder [default: {ModelConfig.depth}, or "
                                        "searched].")
@click.option("--activation", type=click.Choice(ACTIVATIONS),
              help=f"Hidden-layer activation [default: {ModelConfig.activation}, or searched].")
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
@click.option("--checkpoint-seconds", default=DEFAULT_CHECKPOINT_SECONDS, show_default=True,
              type=click.FloatRange(min=0),
              help="Write the resumable state this often (at a round's end), so a killed run resumes; "
                   "the first round always publishes the run folder.")
@click.option("--checkpoint-rounds", type=click.IntRange(min=1), help="Instead, after every N rounds.")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(min=1),
              help="Data-parallel processes on this machine (gloo on CPU, NCCL on GPUs), as torchrun would start; "
                   "each takes a share of the steps and of the curves.")
@click.option("--sync-every", default=TrainConfig.sync_every, show_default=True, type=click.IntRange(min=1),
              help="With several processes: optimiser steps between averages of their weights.")
@force_option
def train(family, data, n_curves, steps, epochs, preset, budget, header, stream, batch_size, lr, lr_final, warmup_epochs, beta,
          kl_warmup_epochs, ema, adam_beta2, threads, latent_dim, hidden, depth, activation, linear_path, scaling,
          loss, val_fraction, device, seed, out, resume_run, stop_after, checkpoint_seconds, checkpoint_rounds, nproc,
          sync_every, force) -> None:
    """Train a VAE on a curve family or your own curves, or resume a run (also one that was killed)."""
    import os

    from curvae.training.checkpoints import CheckpointPolicy
    from curvae.training.config import RunConfig
    from curvae.training.loop import resume
    from curvae.training.loop import train as train_run

    if nproc > 1 and int(os.environ.get("WORLD_SIZE", "1") or 1) == 1:  # start the ranks; each runs this command
        import sys

        from curvae.training.parallel.launch import launch, strip_nproc

        args = strip_nproc(sys.argv[1:])
        launch(args if args and args[0] == "train" else ["train", *args], nproc)
        return
    policy = CheckpointPolicy(seconds=checkpoint_seconds, rounds=checkpoint_rounds)
    if resume_run:
        s = resume(resume_run, out=out, on_epoch=epoch_printer(start=None), stop_after=stop_after,
                   checkpoints=policy)
        _print_run(out or resume_run, s)
        return
    if not out:
        raise click.UsageError("--out is required (or pass --resume RUN)")
    base_model, base_train = (SEED_MODEL, SEED_TRAIN) if preset == "seed" else ({}, {})
    if steps is not None:
        base_train = {k: v for k, v in base_train.items() if k != "epochs"}
    given = lambda **kw: {k: v for k, v in kw.items() if v is not None}  # noqa: E731
    cfg = RunConfig(
        data=DataConfig(family=family, n_curves=n_curves, data=data, val_fraction=val_fraction, header=header,
                        stream=stream),
        model=ModelConfig(**{"latent_dim": latent_dim, **base_model,
                             **given(hidden=hidden, depth=depth, activation=activation, linear_path=linear_path,
                                     scaling=scaling)}),
        train=TrainConfig(**{**base_train, **given(steps=steps, epochs=epochs, lr=lr, lr_final=lr_final, loss=loss),
                             **given(batch_size=batch_size), "warmup_epochs": warmup_epochs, "beta": beta,
                             "kl_warmup_epochs": kl_warmup_epochs, "ema": ema, "adam_beta2": adam_beta2,
                             "threads": threads, "device": device, "seed": seed, "sync_every": sync_every}),
    )
    pinned = preset != "auto" or any(v is not None for v in (hidden, depth, activation)) or stop_after is not None
    if pinned or int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        s = train_run(cfg, out, force=force, on_epoch=epoch_printer(stop_after), stop_after=stop_after,
                      checkpoints=policy)
    else:
        from curvae.recipe.capacity import train_searched
        from curvae.recipe.config import SearchConfig

        s = train_searched(cfg, out, search=SearchConfig(budget_seconds=budget), batch_size=batch_size,
                           force=force, **search_printer())
    _print_run(out, s)


def pca_line(pca: dict, model_rmse: float) -> str:
    """One line comparing the model with PCA at the same size on the held-out curves."""
    d, rmse, k = pca["latent_dim"], pca["val_rmse"], pca.get("components_to_match")
    worth = f"PCA needs {k} components to match it" if k is not None else "PCA needs more than 64 components to match it"
    verdict = (f"PCA with {d} components is as good as the model ({rmse:.4g}): a linear basis is enough here"
               if rmse <= model_rmse else f"{worth} ({rmse / max(model_rmse, 1e-30):.1f}x the model's error at {d})")
    return f"baseline: held-out RMSE model {model_rmse:.4g}, PCA at d={d} {rmse:.4g}; {verdict}"


def _print_run(out: str, s: dict) -> None:
    if not s:  # a rank other than 0 of a multi-process run: rank 0 reports
        return
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
    cap = s.get("capacity")
    if cap:
        from curvae.runtime.bundle.records import capacity_scores

        click.echo(f"network: {cap['chosen']} ({cap['network']}), chosen by held-out fit residual median "
                   f"({capacity_scores(cap)}) "
                   f"in {cap['seconds']:.1f}s of a {cap['budget_seconds']:g}s budget")


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
@click.option("--no-params", is_flag=True,
              help="Leave out the parameter head and the emulator (params.onnx: z -> the curve's parameters, and "
                   "emulator.onnx: parameters -> curve, when they are known).")
@click.option("--no-emulator", is_flag=True,
              help="Keep the parameter head but leave out the emulator (emulator.onnx), whose training is most of "
                   "an export's time.")
@force_option
def export(run, out, opset, atol, rtol, dtype, quantize, fp16_budget, int8_budget, int8_scheme, held_out,
           no_params, no_emulator, force) -> None:
    """Export a run as an ONNX bundle (encoder.onnx, decoder.onnx, manifest.json, and params.onnx and emulator.onnx
    when the curves' parameters are known)."""
    from curvae.training.export_run import export_run

    variants = {**({"fp16": fp16_budget} if dtype == "fp16" else {}),
                **({"int8": int8_budget} if quantize == "int8" else {})}
    res = export_run(run, out, config=ExportConfig(opset=opset, atol=atol, rtol=rtol, int8_scheme=int8_scheme,
                                          held_out=held_out, params=not no_params, emulator=not no_emulator),
                     force=force,
                     variants=variants or None)
    p = res.manifest.parity
    click.echo(f"bundle {out}: parity passed on batches {list(p.batches)} ({', '.join(p.providers)}): "
               f"max abs {p.max_abs:.2e}, max rel {p.max_rel:.2e} (atol {atol:g}, rtol {rtol:g}, "
               f"float32 noise {p.float32_noise:.1e})")
    if res.manifest.baseline is not None:
        click.echo(f"baseline: {res.manifest.baseline.summary()}")
    if res.manifest.params is not None:
        h = res.manifest.params
        click.echo("parameters (params.onnx): " + "; ".join(
            f"{n} held-out relative error median {m:.2%}, p90 {q:.2%}"
            for n, m, q in zip(h.names, h.rel_error_median, h.rel_error_p90)))
    if res.manifest.emulator is not None:
        e = res.manifest.emulator
        click.echo(f"emulator (emulator.onnx): held-out curves from their parameters within {e.share_median:.3%} of "
                   f"their spread (median; p90 {e.share_p90:.3%}), {e.error_median / max(e.fit_residual_median, 1e-300):.1f}x "
                   "the latent fit's residual")
    for name, v in res.manifest.variants.items():
        click.echo(f"variant {name}: max |{name} - fp32| {v.max_abs['x_hat']:.3g} (budget {v.budget:g}), "
                   f"decode {v.decode_rows_per_s / 1e6:.2f}M rows/s vs fp32 {v.fp32_decode_rows_per_s / 1e6:.2f}M, "
                   f"fit residual median {v.fit_residual_median:.4f} vs fp32 {v.fp32_fit_residual_median:.4f}")
