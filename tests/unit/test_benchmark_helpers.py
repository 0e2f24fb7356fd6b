"""The benchmarks' own helpers still read what the runtime produces (a full `make bench` takes minutes)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_decoder_flop_count_reads_the_manifest():
    import bench_runtime

    from curvae.runtime import CurveModel

    model = CurveModel.load(ROOT / "tests" / "fixtures" / "golden")  # hidden 32, depth 1, latent 2, 100 points
    assert bench_runtime.decoder_flops_per_row(model) == 2 * (2 * 32 + 32 * 100)


def test_every_benchmark_module_imports():
    import bench_fit  # noqa: F401
    import bench_memory  # noqa: F401
    import bench_train  # noqa: F401
    import run_all  # noqa: F401


def test_decoder_flop_count_includes_the_affine_path(bundle_dir):
    import bench_runtime

    from curvae.runtime import CurveModel

    model = CurveModel.load(bundle_dir)  # hidden 32, depth 1, latent 2, 100 points, affine path
    assert bench_runtime.decoder_flops_per_row(model) == 2 * (2 * 32 + 32 * 100) + 2 * 2 * 100 + 100
