"""What every command shares: the group, option decorators, loading a model, progress and printing."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from curvae import __version__
from curvae.core.errors import CurvaeError
from curvae.runtime.bundle.records import VARIANTS


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


PROVIDERS_HELP = "Execution providers: 'auto' (all available, best first) or a comma list such as 'cuda,cpu'."
TRAIN_HINT = "this command needs the training extra: pip install 'curvae[train]'"


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
                click.echo(f"Error: {exc.name} is not installed; {TRAIN_HINT}", err=True)
                sys.exit(1)
            raise
        except KeyboardInterrupt:
            click.echo("Error: interrupted; nothing partial was written", err=True)
            sys.exit(130)


def load_model(model: str, providers: str, strict: bool = False, variant: str | None = None, threads: int | None = None):
    from curvae.runtime.model import CurveModel

    return CurveModel.load(model, providers=providers, strict=strict, variant=variant, threads=threads)


def scale_options(f):
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


def progress(label: str):
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


def print_cluster(res: dict) -> None:
    if res.get("note"):
        click.echo(f"note: {res['note']}")
    if res.get("workers"):
        mem = res.get("worker_peak_rss_mib") or []
        peak = f"; workers' peak memory {min(mem):.0f}-{max(mem):.0f} MiB" if mem else ""
        click.echo(f"ran {res['tasks']} task{'' if res['tasks'] == 1 else 's'} on {res['workers']} Dask "
                   f"worker{'' if res['workers'] == 1 else 's'}{peak}")


def runtime_options(f):
    """--providers, --strict and --variant, for every command that runs graphs."""
    f = click.option("--variant", type=click.Choice(VARIANTS),
                     help="Run a precision variant of the bundle instead of its float32 graphs.")(f)
    f = click.option("--strict", is_flag=True,
                     help="Fail unless every node of both graphs runs on the first requested provider "
                          "(no silent CPU fallback; checked with onnxruntime's profiler).")(f)
    return click.option("--providers", default="auto", show_default=True, help=PROVIDERS_HELP)(f)


def force_option(f):
    return click.option("--force", is_flag=True, help="Replace --out if it exists.")(f)


def epoch_printer(total: int | None = None, start: int | None = 0):
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


def search_printer() -> dict:
    """``on_candidate`` and ``on_epoch`` for the capacity search: a progress bar per candidate, its label
    naming the candidate and the search's budget."""
    state: dict = {}

    def on_candidate(c: dict) -> None:
        state["label"] = (f"candidate {c['index']}/{c['of']} {c['name']}: {c['network']}; search budget "
                          f"{c['budget_seconds']:g} s, {c['spent']:.0f} s spent")
        state["printer"] = epoch_printer()

    def on_epoch(row: dict) -> None:
        state["printer"]({**row, "budget": f"{row.get('budget')}; {state['label']}"})

    return {"on_candidate": on_candidate, "on_epoch": on_epoch}


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="curvae")
def main() -> None:
    """Learn a latent space of curves, export it to ONNX, fit curves anywhere."""
