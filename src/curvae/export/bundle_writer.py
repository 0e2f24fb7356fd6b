"""Write a bundle: both graphs, parity-checked, with the manifest, atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxscript
import torch

from curvae import __version__
from curvae.core.atomic import atomic_dir, check_can_write, write_bytes, write_json
from curvae.core.errors import ExportError
from curvae.core.pca import PCA
from curvae.export.config import ExportConfig
from curvae.export.graphs import EXPORT_BATCH, export_graph
from curvae.export.emulator import build_emulator
from curvae.export.param_head import ParamData, build_head
from curvae.export.residuals import residual_record
from curvae.export.parity import ParityRow, run_parity, summarise
from curvae.export.variants import build_variant, default_fit
from curvae.runtime.bundle.format import (
    DECODER_FILE,
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    ENCODER_FILE,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    FORMAT_VERSION,
    MANIFEST_FILE,
    Manifest,
    sha256_bytes,
)
from curvae.runtime.bundle.records import (
    BaselineRecord,
    ExportRecord,
    FitResidualRecord,
    GraphInfo,
    HeldOutRecord,
    ParityRecord,
    TrainingRecord,
    VariantRecord,
)
from curvae.runtime.bundle.scan import scan_model
from curvae.runtime.bundle.versions import min_onnxruntime
from curvae.runtime.engine import onnxrt
from curvae.runtime.engine.session import make_session


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_bundle` wrote, with its parity rows."""

    manifest: Manifest
    parity: list[ParityRow]


def export_bundle(
    encoder: torch.nn.Module,
    decoder: torch.nn.Module,
    out: str | os.PathLike[str],
    *,
    n_points: int,
    latent_dim: int,
    grid: Sequence[float],
    family: dict[str, Any],
    run_id: str,
    training: TrainingRecord,
    config: ExportConfig = ExportConfig(),
    force: bool = False,
    reference: tuple[torch.nn.Module, torch.nn.Module] | None = None,
    variants: dict[str, float] | None = None,
    fit_targets: np.ndarray | None = None,
    baseline_train: np.ndarray | None = None,
    params: ParamData | None = None,
) -> ExportResult:
    """Export ``encoder`` ``(x, eps) → (z, mu, logvar)`` and ``decoder`` ``z → x_hat`` as a bundle.

    The steps read top-down: the graphs, the parity gate, the variants, the
    manifest, one atomic write. Parity against torch runs on batches 1, 2, 7
    and 1000 with the same ``eps``; above the tolerance nothing is written
    and :class:`~curvae.core.errors.ExportError` is raised. ``reference``
    gives the (encoder, decoder) to compare against when the exported
    modules are rewritten forms of them (e.g. with folded constants).
    ``variants`` maps precision variants (``"fp16"``, ``"int8"``) to their
    error budgets; each is measured (error, speed, and fit residual on
    ``fit_targets``, shape (n, n_points)) and refused over budget. The
    residuals of the default fit on ``fit_targets`` (held-out curves) are
    recorded for the out-of-family flag. With ``baseline_train`` (the
    training curves, (n, n_points)), PCA fitted on them is scored on the same
    held-out curves and recorded beside the model (``baseline``). With
    ``params`` (the parameters of ``baseline_train`` and ``fit_targets``) and
    ``config.params``, the parameter head ``params.onnx`` and the emulator
    ``emulator.onnx`` are fitted, exported and parity-checked
    (:mod:`curvae.export.param_head`, :mod:`curvae.export.emulator`).
    """
    check_can_write(out, force=force)
    enc_bytes, dec_bytes, ir_version = _graphs(encoder, decoder, n_points=n_points, latent_dim=latent_dim,
                                               family=family, run_id=run_id, opset=config.opset)
    ref_enc, ref_dec = reference if reference is not None else (encoder, decoder)
    rows, parity = _parity_gate(ref_enc, ref_dec, enc_bytes, dec_bytes, latent_dim=latent_dim, config=config,
                                exported=None if reference is None else (encoder, decoder))
    files, records = _variants(variants or {}, enc_bytes, dec_bytes, decoder, latent_dim=latent_dim,
                               targets=fit_targets, seed=config.seed, int8_scheme=config.int8_scheme)
    residuals = None if fit_targets is None else _fit_residuals(enc_bytes, dec_bytes, fit_targets)
    baseline = None
    if residuals is not None and baseline_train is not None:
        baseline = pca_baseline(baseline_train, fit_targets, residuals, latent_dim=latent_dim, seed=config.seed)
    keep = config.held_out if family.get("name") == "custom" and fit_targets is not None else 0
    keep = min(keep, HELD_OUT_MAX_VALUES // n_points)  # the manifest stays far below the readers' JSON cap
    held_out = HeldOutRecord.of(np.asarray(fit_targets)[:keep]) if keep else None
    head = emulator = None
    if config.params and params is not None and fit_targets is not None and baseline_train is not None:
        meta = {"curvae.run_id": run_id, "curvae.latent_dim": str(latent_dim), "curvae.family": str(family.get("name"))}
        head = build_head(enc_bytes, dec_bytes, baseline_train, fit_targets, params, opset=config.opset, meta=meta,
                          atol=config.atol, rtol=config.rtol, seed=config.seed, held_out_rows=keep)
        if config.emulator:
            emulator = build_emulator(enc_bytes, dec_bytes, decoder, None if head is None else head[0],
                                      baseline_train, fit_targets, params,
                                      z_fit_median=float(np.median(residuals.values)), meta=meta, opset=config.opset,
                                      atol=config.atol, rtol=config.rtol, seed=config.seed,
                                      ranges=family.get("params"))
    manifest = Manifest(
        format_version=FORMAT_VERSION, run_id=run_id, n_points=n_points, latent_dim=latent_dim,
        grid=tuple(float(v) for v in np.asarray(grid, dtype=np.float64)), family=family,
        encoder=GraphInfo(ENCODER_FILE, sha256_bytes(enc_bytes), ENCODER_INPUTS, ENCODER_OUTPUTS),
        decoder=GraphInfo(DECODER_FILE, sha256_bytes(dec_bytes), DECODER_INPUTS, DECODER_OUTPUTS),
        opset=config.opset, ir_version=ir_version,
        producer={"curvae": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                  "onnxscript": onnxscript.__version__, "onnxruntime": onnxrt.load().__version__},
        parity=parity, training=training, variants=records,
        export=ExportRecord(opset=config.opset, atol=config.atol, rtol=config.rtol, seed=config.seed),
        fit_residuals=residuals,
        min_onnxruntime=min_onnxruntime(config.opset, ir_version),
        baseline=baseline,
        held_out=held_out,
        params=None if head is None else head[1],
        emulator=None if emulator is None else emulator[1],
    )
    for extra in (head, emulator):
        if extra is not None:
            files[extra[1].graph.file] = extra[0]
    with atomic_dir(out, force=force) as tmp:
        for fname, data in {ENCODER_FILE: enc_bytes, DECODER_FILE: dec_bytes, **files}.items():
            write_bytes(tmp / fname, data)
        write_json(tmp / MANIFEST_FILE, manifest.to_dict())
    return ExportResult(manifest=manifest, parity=rows)


def _graphs(encoder, decoder, *, n_points: int, latent_dim: int, family: dict[str, Any], run_id: str,
            opset: int) -> tuple[bytes, bytes, int]:
    """Both graphs as bytes, with the bundle's facts in their metadata, and their IR version."""
    meta = {"curvae.format_version": FORMAT_VERSION, "curvae.run_id": run_id, "curvae.n_points": str(n_points),
            "curvae.latent_dim": str(latent_dim), "curvae.family": str(family.get("name"))}
    x_ex = torch.zeros(EXPORT_BATCH, n_points)
    z_ex = torch.zeros(EXPORT_BATCH, latent_dim)
    enc_proto = export_graph(encoder, (x_ex, z_ex), input_names=ENCODER_INPUTS, output_names=ENCODER_OUTPUTS,
                             opset=opset, metadata={**meta, "curvae.graph": "encoder"})
    dec_proto = export_graph(decoder, (z_ex,), input_names=DECODER_INPUTS, output_names=DECODER_OUTPUTS,
                             opset=opset, metadata={**meta, "curvae.graph": "decoder"})
    return enc_proto.SerializeToString(), dec_proto.SerializeToString(), int(enc_proto.ir_version)


def _parity_gate(ref_enc, ref_dec, enc_bytes: bytes, dec_bytes: bytes, *, latent_dim: int,
                 config: ExportConfig, exported=None) -> tuple[list[ParityRow], ParityRecord]:
    """Run parity; refuse (nothing written yet) when any element is over the tolerance."""
    rows = run_parity(ref_enc, ref_dec, enc_bytes, dec_bytes, latent_dim=latent_dim, seed=config.seed,
                      atol=config.atol, rtol=config.rtol, exported=exported)
    parity = summarise(rows, atol=config.atol, rtol=config.rtol)
    if not parity.passed:
        worst = max((r for r in rows if not r.passed), key=lambda r: r.max_abs)
        raise ExportError(
            f"parity failed: {worst.graph}.{worst.output} at batch {worst.batch} differs by {worst.max_abs:.3g} "
            f"> atol={config.atol:g} + rtol={config.rtol:g}·|torch| + 4·float32 noise "
            f"({worst.float32_noise:.3g}); nothing was written "
            "(raise --atol only if that error is acceptable)"
        )
    return rows, parity


#: Most held-out curve values a manifest keeps (about 3 MB of JSON, well under the readers' 8 MiB cap).
HELD_OUT_MAX_VALUES = 250_000
#: PCA sizes the baseline scores (besides the model's own latent size).
BASELINE_SIZES = (1, 2, 3, 4, 6, 8, 12, 16)


def pca_baseline(train: np.ndarray, held_out: np.ndarray, residuals: FitResidualRecord, *, latent_dim: int,
                 seed: int = 0) -> BaselineRecord:
    """PCA fitted on ``train`` (n, P), scored on ``held_out`` (m, P) beside the model's ``residuals`` of them."""
    basis = PCA.fit(train, seed=seed)
    model_median = float(np.median(residuals.values))
    return BaselineRecord(method="pca", latent_dim=latent_dim, n_train=int(len(train)),
                          n_held_out=int(len(held_out)),
                          pca_residual_median=basis.median_by_size(held_out, sorted({*BASELINE_SIZES, latent_dim})),
                          model_residual_median=model_median,
                          components_to_match=basis.components_to_match(held_out, model_median))


def _fit_residuals(enc_bytes: bytes, dec_bytes: bytes, targets: np.ndarray) -> FitResidualRecord:
    """Residuals of the runtime's default fit on held-out curves (:func:`curvae.export.residuals.residual_record`)."""
    cpu = ["CPUExecutionProvider"]
    res = default_fit(make_session(enc_bytes, cpu, name="encoder"), make_session(dec_bytes, cpu, name="decoder"),
                      targets)
    return residual_record(targets, res)


def _variants(budgets: dict[str, float], enc_bytes: bytes, dec_bytes: bytes, decoder, *, latent_dim: int,
              targets: np.ndarray | None, seed: int,
              int8_scheme: str) -> tuple[dict[str, bytes], dict[str, VariantRecord]]:
    """Build and measure each precision variant; returns its files and its manifest records."""
    if not budgets:
        return {}, {}
    if targets is None:  # curves from the model itself when no held-out curves are given
        with torch.no_grad():
            targets = decoder(torch.randn(500, latent_dim, generator=torch.Generator().manual_seed(seed))).numpy()
    files: dict[str, bytes] = {}
    records: dict[str, VariantRecord] = {}
    for name, budget in budgets.items():
        v_enc, v_dec, measured = build_variant(name, enc_bytes, dec_bytes, latent_dim=latent_dim,
                                               targets=np.asarray(targets, np.float32), budget=budget, seed=seed,
                                               int8_scheme=int8_scheme)
        enc_file, dec_file = f"encoder.{name}.onnx", f"decoder.{name}.onnx"
        files.update({enc_file: v_enc, dec_file: v_dec})
        scan = scan_model(v_enc, name=enc_file)
        records[name] = VariantRecord(
            encoder=GraphInfo(enc_file, sha256_bytes(v_enc), ENCODER_INPUTS, ENCODER_OUTPUTS),
            decoder=GraphInfo(dec_file, sha256_bytes(v_dec), DECODER_INPUTS, DECODER_OUTPUTS),
            opset=scan.opsets[""], ir_version=scan.ir_version,
            min_onnxruntime=min_onnxruntime(scan.opsets[""], scan.ir_version), **measured)
    return files, records
