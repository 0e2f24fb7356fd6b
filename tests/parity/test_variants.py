"""Precision variants: written, measured, budget-gated, and loadable by name."""

from __future__ import annotations

import numpy as np
import pytest

from curvae.runtime import BundleError, CurveModel, ExportError
from curvae.training.export_run import export_run


@pytest.fixture(scope="module")
def variant_bundle(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("variants") / "model"
    export_run(run_dir, out, variants={"fp16": 0.05, "int8": 0.5})
    return out


def test_variant_files_and_manifest_records(variant_bundle):
    assert {p.name for p in variant_bundle.iterdir()} == {
        "manifest.json", "encoder.onnx", "decoder.onnx", "encoder.fp16.onnx", "decoder.fp16.onnx",
        "encoder.int8.onnx", "decoder.int8.onnx", "params.onnx",
        "emulator.onnx"}  # one float32 parameter head and emulator for every variant
    assert CurveModel.load(variant_bundle, variant="int8").param_head is not None
    v = CurveModel.load(variant_bundle).manifest.variants
    for name, budget in (("fp16", 0.05), ("int8", 0.5)):
        rec = v[name]
        assert rec.budget == budget and 0 < rec.max_abs["x_hat"] <= budget
        assert rec.decode_rows_per_s > 0 and rec.fp32_decode_rows_per_s > 0
        assert np.isfinite(rec.fit_residual_median) and rec.n_fit_targets > 0


@pytest.mark.parametrize("name", ["fp16", "int8"])
def test_variant_loads_by_name_keeps_float32_io_and_stays_within_budget(variant_bundle, name):
    fp32 = CurveModel.load(variant_bundle)
    var = CurveModel.load(variant_bundle, variant=name)
    assert var.variant == name
    z = np.random.default_rng(5).standard_normal((300, 2)).astype(np.float32)
    got, ref = var.decode(z), fp32.decode(z)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() <= var.manifest.variants[name].budget
    curves = fp32.sample(20, seed=1)
    assert np.isfinite(var.fit(curves).residual).all()


def test_fp16_fits_as_well_as_fp32_and_int8_does_not(variant_bundle, beta_targets):
    """What the docs promise a user choosing a variant: fp16 for fitting, int8 for bulk decoding only."""
    fits = {v: CurveModel.load(variant_bundle, variant=v).fit(beta_targets) for v in (None, "fp16", "int8")}
    med = {v: float(np.median(f.residual)) for v, f in fits.items()}
    assert abs(med["fp16"] - med[None]) <= 0.1 * med[None]
    assert np.median(np.abs(fits["fp16"].z - fits[None].z)) < 0.05
    assert med["int8"] > med["fp16"]  # its piecewise-flat decoder fits worse (docs/portability.md)


def test_unknown_variant_is_a_clear_error(variant_bundle, bundle_dir):
    with pytest.raises(BundleError, match=r"variant 'fp16' is not in this bundle \(variants: none\)"):
        CurveModel.load(bundle_dir, variant="fp16")
    with pytest.raises(BundleError, match=r"variant 'bf16' is not in this bundle \(variants: fp16, int8\)"):
        CurveModel.load(variant_bundle, variant="bf16")


def test_variant_over_budget_is_refused_and_nothing_written(run_dir, tmp_path):
    with pytest.raises(ExportError, match=r"variant int8: decoded curves differ from float32 by .* > budget 1e-09"):
        export_run(run_dir, tmp_path / "m", variants={"int8": 1e-9})
    assert list(tmp_path.iterdir()) == []


def test_tampered_variant_graph_is_caught(variant_bundle, tmp_path):
    import shutil

    dst = tmp_path / "m"
    shutil.copytree(variant_bundle, dst)
    p = dst / "decoder.int8.onnx"
    data = bytearray(p.read_bytes())
    data[-10] ^= 0xFF
    p.write_bytes(bytes(data))
    CurveModel.load(dst)  # the float32 graphs are untouched
    with pytest.raises(BundleError, match="decoder.int8.onnx has sha256"):
        CurveModel.load(dst, variant="int8")


def test_fp16_rows_do_not_depend_on_the_batch_but_int8_rows_may(variant_bundle):
    z = np.array([[0.3, -0.2]], np.float32)
    others = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32) * 3
    fp16 = CurveModel.load(variant_bundle, variant="fp16")
    np.testing.assert_array_equal(fp16.decode(z)[0], fp16.decode(np.concatenate([z, others]))[0])
    int8 = CurveModel.load(variant_bundle, variant="int8")
    diff = np.abs(int8.decode(z)[0] - int8.decode(np.concatenate([z, others]))[0]).max()
    assert diff <= int8.manifest.variants["int8"].budget  # documented: batch-dependent, within its budget


def test_int8_scheme_and_its_error_on_every_kernel_are_recorded(variant_bundle):
    from curvae.export.config import ExportConfig
    from curvae.export.int8_kernels import weight_types

    rec = CurveModel.load(variant_bundle).manifest.variants["int8"]
    assert rec.scheme == ExportConfig.int8_scheme
    assert set(rec.max_abs_by_kernel) == {"native", "exact", "pairsum16"}
    for out, worst in rec.max_abs.items():
        assert worst == max(k[out] for k in rec.max_abs_by_kernel.values())
    # u8 weights: the non-VNNI kernel sums them exactly, so the two integer models agree
    assert weight_types((variant_bundle / "decoder.int8.onnx").read_bytes()) == {"uint8"}
    assert rec.max_abs_by_kernel["pairsum16"] == rec.max_abs_by_kernel["exact"]


def test_the_7bit_scheme_never_saturates_either(run_dir, tmp_path):
    from curvae.export.config import ExportConfig

    export_run(run_dir, tmp_path / "m", config=ExportConfig(int8_scheme="u8s7-per-channel"), variants={"int8": 0.5})
    rec = CurveModel.load(tmp_path / "m").manifest.variants["int8"]
    assert rec.scheme == "u8s7-per-channel"
    assert rec.max_abs_by_kernel["pairsum16"] == rec.max_abs_by_kernel["exact"]
    with pytest.raises(Exception, match="int8_scheme='u8s8' is not one of"):
        ExportConfig(int8_scheme="u8s8")


def test_recorded_int8_error_bounds_what_this_cpu_gives(variant_bundle):
    fp32, int8 = CurveModel.load(variant_bundle), CurveModel.load(variant_bundle, variant="int8")
    z = np.random.default_rng(11).standard_normal((10_000, 2)).astype(np.float32)
    measured = float(np.abs(int8.decode(z) - fp32.decode(z)).max())
    recorded = int8.manifest.variants["int8"].max_abs["x_hat"]
    assert 0 < measured <= 1.5 * recorded


def test_the_legacy_u8s8_scheme_saturates_on_the_non_vnni_kernel(run_dir, tmp_path):
    """Why the scheme changed: the same graph quantised u8×s8 loses accuracy where pairs saturate to int16."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from curvae.export.int8_kernels import evaluate

    export_run(run_dir, tmp_path / "m")
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(tmp_path / "m" / "decoder.onnx", tmp_path / "s8.onnx", op_types_to_quantize=["MatMul", "Gemm"],
                     weight_type=QuantType.QInt8, per_channel=True)
    z = np.random.default_rng(2).standard_normal((2000, 2)).astype(np.float32) * 2
    ref = CurveModel.load(tmp_path / "m").decode(z)
    data = (tmp_path / "s8.onnx").read_bytes()
    err = {k: float(np.abs(evaluate(data, {"z": z}, k)[0] - ref).max()) for k in ("exact", "pairsum16")}
    assert err["pairsum16"] > 1.5 * err["exact"], err


def test_check_warns_about_an_int8_variant_without_a_scheme(variant_bundle, tmp_path):
    import json
    import shutil

    from curvae.apps.check import check_bundle

    assert not check_bundle(variant_bundle).warnings
    dst = tmp_path / "old"
    shutil.copytree(variant_bundle, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for key in ("scheme", "max_abs_by_kernel"):
        del manifest["variants"]["int8"][key]
    (dst / "manifest.json").write_text(json.dumps(manifest))
    report = check_bundle(dst)
    assert len(report.warnings) == 1 and "may saturate" in report.warnings[0]
    assert any(line.startswith("warning: the int8 variant") for line in report.lines())
