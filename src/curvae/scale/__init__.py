"""curvae at cluster scale: encode, decode and fit over Dask arrays, on any Dask cluster.

Needs the ``[dask]`` extra (``pip install 'curvae[dask]'``: dask[array],
distributed and zarr). The runtime does not import this package; it imports
the runtime and runs the runtime's own chunk kernels
(:mod:`curvae.io.chunks`) on each block, so its results are those of the
same call without Dask. See ``docs/scale.md``.

Examples
--------
>>> import dask.array as da                                          # doctest: +SKIP
>>> from curvae.runtime import CurveModel
>>> from curvae import scale
>>> model = CurveModel.load("model")
>>> targets = da.from_zarr("targets.zarr")                           # (n, n_points), chunked by rows
>>> fit = scale.fit(model, targets)                                  # lazy: nothing has run yet
>>> fit.fields["z"].to_zarr("z.zarr")                                # or fit.compute() for a FitResult
"""

from curvae.scale.arrays import FitArrays, decode, encode, fit
from curvae.scale.cluster import connect, parse_address

__all__ = ["FitArrays", "connect", "decode", "encode", "fit", "parse_address"]
