"""The numpy model of onnxruntime's integer kernels: what a non-VNNI x86 CPU computes, checked on any CPU."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
from curvae.export.int8_kernels import pairsum16_matmul  # noqa: E402


def test_u8_by_s8_pairs_saturate_to_int16_as_vpmaddubsw_does():
    a = np.array([[255, 255, 1, 2]], np.uint8)
    b = np.array([[127], [127], [3], [4]], np.int8)
    # pair (0, 1): 255·127 + 255·127 = 64770 saturates to 32767; pair (2, 3): 3 + 8 = 11 is exact
    assert pairsum16_matmul(a, b)[0, 0] == 32767 + 11
    assert (a.astype(np.int64) @ b.astype(np.int64))[0, 0] == 64770 + 11


def test_u8_by_u8_never_saturates():
    a = np.full((3, 6), 255, np.uint8)
    b = np.full((6, 2), 255, np.uint8)
    np.testing.assert_array_equal(pairsum16_matmul(a, b), a.astype(np.int64) @ b.astype(np.int64))


@pytest.mark.parametrize("k", [1, 7, 64])
def test_zero_points_are_exact_and_small_products_match_the_exact_sum(k):
    g = np.random.default_rng(k)
    a = g.integers(0, 40, (5, k)).astype(np.uint8)
    b = g.integers(-20, 20, (k, 3)).astype(np.int8)
    za, zb = np.uint8(7), np.array([1, -2, 3], np.int8)
    exact = (a.astype(np.int64) - 7) @ (b.astype(np.int64) - zb.astype(np.int64))
    np.testing.assert_array_equal(pairsum16_matmul(a, b, za, zb), exact)
