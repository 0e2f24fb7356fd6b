"""The flows over the stages: report, explore, demo."""

from __future__ import annotations

import click

from curvae.cli.common import (
    force_option,
    main,
    search_printer,
)
from curvae.recipe.config import DEMO_BUDGET_SECONDS
from curvae.training.config import (
    TrainConfig,
)


@main.command()
@click.argument("source", type=click.Path(file_okay=False))
@click.option("--targets", type=click.Path(dir_okay=False), help="Curves to fit (default: fresh family curves).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the fresh curves.")
@force_option
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
@click.option("--budget", default=DEMO_BUDGET_SECONDS, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds the capacity search may spend training.")
@force_option
def demo(out, n_targets, epochs, seed, budget, force) -> None:
    """Run the worked example: train on Beta (the network chosen by the capacity search), export with parity,
    encode, sample, fit."""
    from curvae.apps.demo import format_summary, run_demo
    from curvae.recipe.config import SearchConfig
    from curvae.training.config import RunConfig

    tc = TrainConfig(seed=seed) if epochs is None else TrainConfig(seed=seed, epochs=epochs)
    s = run_demo(out, n_targets=n_targets, seed=seed, force=force, config=RunConfig(train=tc),
                 search=SearchConfig(budget_seconds=budget), **search_printer())
    click.echo(format_summary(s, out))
