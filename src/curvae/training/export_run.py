"""Bridge from a run folder to the exporter, and parity of a bundle against its run."""

from __future__ import annotations

import os

import numpy as np

from curvae.core.errors import BundleError, CurvaeError, RunError
from curvae.export import (
    ExportConfig,
    ExportResult,
    ParityRow,
    export_bundle,
    run_parity,
)
from curvae.export.param_head import ParamData
from curvae.runtime.bundle.format import read_bundle
from curvae.runtime.bundle.records import TrainingRecord
from curvae.runtime.engine.providers import available_providers
from curvae.training.data import build_dataset
from curvae.training.model import (
    DecoderGraph,
    EncoderGraph,
    FoldedDecoder,
    FoldedEncoder,
)
from curvae.training.run import load_run


def export_run(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: ExportConfig = ExportConfig(),
    force: bool = False,
    variants: dict[str, float] | None = None,
) -> ExportResult:
    """Export the run folder ``run`` as the bundle ``out`` (see :func:`curvae.export.export_bundle`).

    Precision ``variants`` are measured on the run's held-out curves (rebuilt
    from its config; decoded prior samples if its data file is gone).
    """
    r = load_run(run)
    s = r.summary
    if s.get("status", "complete") != "complete":
        raise RunError(f"run {str(run)!r} is not complete ({s.get('status')}); finish it with "
                       f"`curvae train --resume {run}` before exporting")
    training = TrainingRecord.from_dict({
        **{k: s.get(k) for k in ("epochs", "n_train", "n_val", "final", "seconds", "device", "latent_mean",
                                 "latent_std", "capacity")},
        "config": r.config.to_dict(),
        "history": [{k: row[k] for k in ("epoch", "recon", "kl", "val_recon", "lr")} for row in r.history],
    })
    # The graphs carry the standardisation folded into their first/last layers; parity is
    # checked against the run's model as trained.
    train_curves, held_out, params = _split(r)
    return export_bundle(FoldedEncoder(r.model), FoldedDecoder(r.model), out, n_points=r.config.model.n_points,
                         latent_dim=r.config.model.latent_dim, grid=s["grid"], family=s["family"],
                         run_id=s["run_id"], training=training, config=config, force=force,
                         reference=(EncoderGraph(r.model), DecoderGraph(r.model)), variants=variants,
                         fit_targets=held_out, baseline_train=train_curves, params=params)


def _split(r) -> tuple[np.ndarray | None, np.ndarray | None, ParamData | None]:
    """The run's training curves, held-out curves (at most 500) and their parameters when known, or Nones when
    its data cannot be rebuilt.

    The held-out curves measure the precision variants, the residuals the
    out-of-family flag compares against, and the PCA baseline (fitted on the
    training curves).
    """
    try:
        data = build_dataset(r.config.data, seed=r.config.train.seed)
    except CurvaeError:
        return None, None, None
    if data.sha256 != r.summary.get("data_sha256"):
        return None, None, None
    params = None
    if data.params_train is not None and data.params_val is not None:
        params = ParamData(names=data.param_names, train=data.params_train, val=data.params_val[:500])
    return data.train, data.val[:500], params


def check_against_run(
    bundle: str | os.PathLike[str],
    run: str | os.PathLike[str],
    *,
    providers: list[str] | None = None,
) -> list[ParityRow]:
    """Parity of a bundle's graphs against the run's weights, on each provider.

    Raises :class:`BundleError` when the bundle was not exported from ``run``.
    """
    manifest, enc, dec = read_bundle(bundle)
    r = load_run(run)
    if manifest.run_id != r.summary.get("run_id"):
        raise BundleError(f"bundle run_id {manifest.run_id!r} differs from run {str(run)!r} "
                          f"({r.summary.get('run_id')!r}); pass the run the bundle was exported from")
    return run_parity(EncoderGraph(r.model), DecoderGraph(r.model), enc, dec, latent_dim=manifest.latent_dim,
                      providers=providers or available_providers(), atol=manifest.parity.atol,
                      rtol=manifest.parity.rtol)
