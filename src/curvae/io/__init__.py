"""Files and stores for the command line, the apps and ``curvae.scale``: above the runtime, never below it.

- ``curves``: curves from ``.npy``, ``.npz`` and ``.csv`` (:func:`load_curves`), first-row grids included;
- ``targets``: fit targets in every layout (wide, with gaps, own grids, long-format CSV);
- ``stores``: ``.npy``/``.npz``/``.zarr`` sources and sinks, read and written chunk by chunk;
- ``chunks``: the streaming kernels every path shares (rows named in the whole set, seeded draws per row);
- ``files``: the file-level commands behind ``curvae encode | decode | fit``.
"""

from curvae.io.curves import CurveFile, load_curves

__all__ = ["CurveFile", "load_curves"]
