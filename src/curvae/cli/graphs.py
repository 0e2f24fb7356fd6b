"""The commands that open a bundle and run its graphs: check, info, encode, decode, sample."""

from __future__ import annotations

import json

import click

from curvae.cli.common import (
    PROVIDERS_HELP,
    force_option,
    load_model,
    main,
    print_cluster,
    progress,
    runtime_options,
    scale_options,
)


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.option("--run", "run", type=click.Path(file_okay=False), help="Also check parity against this run.")
@runtime_options
def check(model, run, providers, strict, variant) -> None:
    """Verify a bundle's integrity and where its nodes run; with --run, its parity on every provider."""
    from curvae.apps.check import check_bundle

    report = check_bundle(model, run=run, providers=providers, strict=strict, variant=variant)
    for line in report.lines():
        click.echo(line)
    report.verdict()


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(model, providers, strict, variant, as_json) -> None:
    """Show a bundle's manifest summary and the providers it runs on."""
    from curvae.io.files import describe

    d = describe(load_model(model, providers, strict, variant))
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    for key, val in d.items():
        if key == "baseline" and val:
            val = val["verdict"]
        if key == "params" and val:
            val = "; ".join(f"{n} in [{v['range'][0]:.4g}, {v['range'][1]:.4g}] (held-out relative error median "
                            f"{v['held_out_rel_error_median']:.2%}, p90 {v['held_out_rel_error_p90']:.2%})"
                            for n, v in val.items())
        click.echo(f"{key:>20}: {json.dumps(val) if isinstance(val, (dict, list)) else val}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("curves", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Codes to write: .npy, .npz (key z) or .zarr.")
@click.option("--sample", is_flag=True, help="Draw z = mu + sigma*eps instead of returning mu.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of eps with --sample.")
@scale_options
@runtime_options
@force_option
def encode(model, curves, out, sample, seed, dask, chunk_rows, threads, providers, strict, variant, force) -> None:
    """Encode curves (.npy, .zarr, .npz or .csv) to latent codes."""
    bar, close = progress("encoding")
    try:
        if dask:
            from curvae.scale.jobs import encode_job

            res = encode_job(load_model(model, providers, strict, variant), curves, out, dask=dask, sample=sample,
                             seed=seed, force=force, chunk_rows=chunk_rows, threads=threads, progress=bar)
        else:
            from curvae.io.files import encode_file

            res = {"shape": encode_file(load_model(model, providers, strict, variant, threads), curves, out, sample=sample,
                                        seed=seed, force=force, chunk=chunk_rows)}
    finally:
        close()
    print_cluster(res)
    click.echo(f"wrote {out}: codes of shape {res['shape']}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("codes", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Curves to write: .npy, .npz (key curves) or .zarr.")
@scale_options
@runtime_options
@force_option
def decode(model, codes, out, dask, chunk_rows, threads, providers, strict, variant, force) -> None:
    """Decode latent codes (.npy, .zarr, .csv, or .npz key 'z') to curves."""
    bar, close = progress("decoding")
    try:
        if dask:
            from curvae.scale.jobs import decode_job

            res = decode_job(load_model(model, providers, strict, variant), codes, out, dask=dask, force=force,
                             chunk_rows=chunk_rows, threads=threads, progress=bar)
        else:
            from curvae.io.files import decode_file

            res = {"shape": decode_file(load_model(model, providers, strict, variant, threads), codes, out, force=force,
                                        chunk=chunk_rows)}
    finally:
        close()
    print_cluster(res)
    click.echo(f"wrote {out}: curves of shape {res['shape']}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("params", type=click.Path())
@click.option("--out", required=True, type=click.Path(),
              help="Curves to write: .npy, or .npz/.zarr (curves, and outside: the per-row out-of-range flag).")
@click.option("--extrapolate", is_flag=True,
              help="Emulate parameters outside the training range too, with a warning, instead of refusing them.")
@scale_options
@click.option("--providers", default="auto", show_default=True, help=PROVIDERS_HELP)
@force_option
def emulate(model, params, out, extrapolate, dask, chunk_rows, threads, providers, force) -> None:
    """Emulate the curves of parameter rows (.npy, .zarr, .csv, or .npz key 'theta'): the bundle as a forward
    emulator, theta -> curve. One column per parameter, in the order 'curvae info' lists them."""
    bar, close = progress("emulating")
    try:
        if dask:
            from curvae.scale.jobs import emulate_job

            res = emulate_job(load_model(model, providers), params, out, dask=dask, extrapolate=extrapolate,
                              force=force, chunk_rows=chunk_rows, threads=threads, progress=bar)
        else:
            from curvae.io.files import emulate_file

            res = emulate_file(load_model(model, providers, threads=threads), params, out, extrapolate=extrapolate,
                               force=force, chunk=chunk_rows, progress=bar)
    finally:
        close()
    print_cluster(res)
    if res["outside"]:
        click.echo(f"warning: {res['outside']} row{'' if res['outside'] == 1 else 's'} outside the training range "
                   "were extrapolated" + ("" if str(out).lower().endswith(".npy") else " (flagged in 'outside')"),
                   err=True)
    click.echo(f"wrote {out}: curves of shape {res['shape']}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.option("-n", "n", required=True, type=click.IntRange(min=1), help="Number of curves.")
@click.option("--seed", type=int, help="Seeds the prior draws.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Curves .npy to write.")
@runtime_options
@force_option
def sample(model, n, seed, out, providers, strict, variant, force) -> None:
    """Draw codes from the N(0, I) prior and decode them."""
    from curvae.io.files import sample_file

    curves = sample_file(load_model(model, providers, strict, variant), n, out, seed=seed, force=force)
    click.echo(f"wrote {out}: curves of shape {curves.shape}")
