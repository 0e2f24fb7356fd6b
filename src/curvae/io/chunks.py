"""One chunk of a larger set of rows: the kernels that every streaming path runs, and the arrays a fit writes.

``curvae fit`` in one process and ``curvae fit --dask`` on a cluster both cut
their input into chunks of rows and hand each chunk to :func:`fit_chunk`
(:func:`encode_chunk`, :func:`decode_chunk`) with the index of its first row,
so errors name the row in the whole input and seeded draws depend on the row,
never on the chunking. Their results are therefore the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from curvae.core.errors import BadRowsError, first_line
from curvae.core.seeding import entropy
from curvae.runtime.arrays import as_matrix
from curvae.runtime.fitting.engine import FitResult, concat_fits
from curvae.runtime.model import CurveModel

#: Longest reason kept for a skipped row (``skipped_reasons``).
REASON_CHARS = 200


@dataclass(frozen=True)
class Skipped:
    """Rows that ``--skip-bad-rows`` left unfitted: their index in the whole input, and why."""

    rows: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    reasons: NDArray[np.str_] = field(default_factory=lambda: np.empty(0, f"U{REASON_CHARS}"))

    def __len__(self) -> int:
        return int(self.rows.size)

    @staticmethod
    def join(parts: list[Skipped]) -> Skipped:
        if not parts:
            return Skipped()
        return Skipped(np.concatenate([p.rows for p in parts]).astype(np.int64),
                       np.concatenate([p.reasons for p in parts]).astype(f"U{REASON_CHARS}"))


def fit_columns(n: int, latent_dim: int, n_points: int, *, uncertainty: bool = True, mcmc: bool = False,
                n_samples: int = 0, n_params: int = 0, space: str = "z") -> dict[str, tuple[tuple[int, ...], str]]:
    """Name → (shape, dtype) of every per-target array a fit writes, for ``n`` targets.

    ``ood_threshold`` holds one value for the whole set (NaN when the bundle
    records no held-out residuals); ``ood`` is int8: 1 flagged, 0 not, -1 unavailable.
    With ``n_params`` (a bundle with a parameter head), ``theta`` and, with
    uncertainty, ``theta_std``, ``theta_lo``, ``theta_hi`` (n, k) and ``theta_cov`` (n, k, k).
    A fit in parameter space (``space="theta"``) has no ``cov`` or ``z_std`` (its uncertainty is θ's), and its MCMC
    ``samples`` are of θ, (n, n_samples, k).
    """
    d, p = latent_dim, n_points
    specs = {"z": ((n, d), "float32"), "residual": ((n,), "float64"), "rms": ((n,), "float64"),
             "n_obs": ((n,), "int64"), "success": ((n,), "bool"), "nfev": ((n,), "int64"), "message": ((n,), "U64"),
             "x_hat": ((n, p), "float32")}
    if uncertainty or mcmc:
        specs.update({"cov": ((n, d, d), "float64"), "z_std": ((n, d), "float64"), "sigma": ((n,), "float64"),
                      "chi2": ((n,), "float64"), "band_lo": ((n, p), "float32"), "band_hi": ((n, p), "float32"),
                      "ill_conditioned": ((n,), "bool"), "ood": ((n,), "int8"), "ood_threshold": ((1,), "float64"),
                      "ood_reason": ((n,), "U160"), "band_z_lo": ((n, p), "float32"),
                      "band_z_hi": ((n, p), "float32")})
    if space == "theta":
        specs.pop("cov", None)
        specs.pop("z_std", None)
    if mcmc:
        specs["samples"] = ((n, n_samples, n_params if space == "theta" else d), "float32")
    if n_params:
        k = n_params
        specs["theta"] = ((n, k), "float64")
        if uncertainty or mcmc:
            specs.update({"theta_std": ((n, k), "float64"), "theta_lo": ((n, k), "float64"),
                          "theta_hi": ((n, k), "float64"), "theta_cov": ((n, k, k), "float64")})
    return specs


def param_names_for(model: CurveModel, fit_kw: dict[str, Any]) -> tuple[str, ...]:
    """The names of the parameters a fit with ``fit_kw`` writes (``params=False`` or no head: none; a fit in
    parameter space: the emulator's)."""
    if fit_kw.get("space", "z") == "theta":
        return () if model.manifest.emulator is None else model.manifest.emulator.names
    head = model.manifest.params
    return () if head is None or not fit_kw.get("params", True) else head.names


def fit_columns_for(model: CurveModel, n: int, fit_kw: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """:func:`fit_columns` for ``model.fit(**fit_kw)`` over ``n`` targets."""
    mcmc = fit_kw.get("method") == "mcmc"
    n_samples = 0
    if mcmc:
        from curvae.runtime.fitting.mcmc import McmcOptions

        n_samples = McmcOptions().n_samples
    return fit_columns(n, model.latent_dim, model.n_points, uncertainty=fit_kw.get("uncertainty", True), mcmc=mcmc,
                       n_samples=n_samples, n_params=len(param_names_for(model, fit_kw)),
                       space=fit_kw.get("space", "z"))


def column(res: FitResult, name: str) -> np.ndarray:
    """The rows of output array ``name`` for one chunk's result (``ood_threshold``: its one value)."""
    if name == "ood":  # -1: unavailable (no held-out record in the bundle, or a row that was not fitted)
        if res.ood is None:
            return np.full(res.z.shape[0], -1, np.int8)
        return np.where(res.n_obs == 0, -1, res.ood).astype(np.int8)
    if name == "ood_threshold":
        return np.array([np.nan if res.ood_threshold is None else res.ood_threshold])
    return getattr(res, name)


def not_fitted(n: int, model: CurveModel, reason: str, fit_kw: dict[str, Any]) -> FitResult:
    """The result recorded for ``n`` rows that were skipped: NaN values, ``success`` False, ``nfev`` 0, ``n_obs`` 0."""
    from curvae.runtime.fitting.uncertainty import ood_threshold

    specs = fit_columns_for(model, n, fit_kw)
    values: dict[str, Any] = {}
    for name, (shape, dtype) in specs.items():
        kind = np.dtype(dtype).kind
        values[name] = np.full(shape, np.nan if kind == "f" else 0, dtype) if kind not in "U" else \
            np.full(shape, f"not fitted: {reason}"[:64] if name == "message" else "not fitted", dtype)
    if "ood" in values:
        m = model.manifest
        record = m.fit_residuals if fit_kw.get("space", "z") != "theta" or m.emulator is None else \
            m.emulator.theta_fit
        threshold = ood_threshold(record, float(fit_kw.get("ood_quantile", 0.99)))
        values["ood"] = None if threshold is None else np.zeros(n, bool)
        values["ood_threshold"] = threshold
    return FitResult(**values)


def one_seed(fit_kw: dict[str, Any]) -> dict[str, Any]:
    """``fit_kw`` with its seed made one integer for the whole set, when the fit draws anything.

    Every chunk then draws from that integer (by row), so a seed of None or a
    Generator gives one set of draws for the whole set, not one per chunk.
    """
    kw = dict(fit_kw)
    if kw.get("n_starts", 1) > 1 or kw.get("method") == "mcmc":
        kw["seed"] = entropy(kw.get("seed"))
    return kw


def fit_chunk(model: CurveModel, rows: np.ndarray, *, start: int = 0, skip_bad_rows: bool = False,
              **fit_kw: Any) -> tuple[FitResult, Skipped]:
    """Fit rows ``start:start + len(rows)`` of a larger set of targets on the model grid.

    Parameters
    ----------
    rows : ndarray of shape (n, n_points)
        The chunk's targets; NaN marks an unobserved point.
    start : int
        Index of the chunk's first row in the whole set: errors name rows by
        it, and seeded draws depend on it (see :meth:`CurveModel.fit`).
    skip_bad_rows : bool
        False: a row that cannot be fitted (±inf, too few observed points,
        codes that overflow) stops the chunk with :class:`BadRowsError`, which
        names that row. True: such rows are left out, recorded as not fitted
        (NaN values, ``success`` False, a ``message`` that says why) and
        returned in :class:`Skipped`; the other rows are fitted exactly as
        they would be without them.
    **fit_kw
        Options of :meth:`CurveModel.fit`.

    Returns
    -------
    FitResult, Skipped
    """
    n = rows.shape[0]
    bad: dict[int, str] = {}
    while True:
        segments = _segments(n, sorted(bad))
        try:
            # x_hat_obs is x_hat at the observed points on the model grid: not kept, so segments always agree
            parts = [(lo, hi, replace(model.fit(rows[lo:hi], row_offset=start + lo, **fit_kw), x_hat_obs=None))
                     for lo, hi in segments]
            break
        except BadRowsError as exc:
            local = [r - start for r in exc.rows if 0 <= r - start < n and r - start not in bad]
            if not skip_bad_rows or not local:
                raise
            reason = first_line(exc, REASON_CHARS)
            bad.update({r: reason for r in local})
    if not bad:
        return parts[0][2], Skipped()
    pieces, pos = [], 0
    for lo, hi, res in parts + [(n, n, None)]:
        for r in range(pos, lo):  # the skipped rows before this segment
            pieces.append(not_fitted(1, model, bad[r], fit_kw))
        if res is not None:
            pieces.append(res)
        pos = hi
    out = concat_fits(pieces) if len(pieces) > 1 else pieces[0]
    order = sorted(bad)
    return out, Skipped(np.asarray(order, np.int64) + start, np.array([bad[r] for r in order], f"U{REASON_CHARS}"))


def _segments(n: int, bad: list[int]) -> list[tuple[int, int]]:
    """The runs of rows ``[lo, hi)`` of ``range(n)`` between the sorted ``bad`` rows."""
    out, lo = [], 0
    for b in bad + [n]:
        if b > lo:
            out.append((lo, b))
        lo = b + 1
    return out


def encode_chunk(model: CurveModel, rows: np.ndarray, *, start: int = 0, sample: bool = False,
                 seed: int = 0) -> NDArray[np.float32]:
    """Codes (n, latent_dim) of rows ``start:start + n`` of a set of curves; ``seed`` is one integer for the set."""
    x = as_matrix(rows, name="curves", n_cols=model.n_points, col_name="points", row_offset=start)
    return model.encode(x, sample=sample, seed=seed, row_offset=start)


def decode_chunk(model: CurveModel, rows: np.ndarray, *, start: int = 0) -> NDArray[np.float32]:
    """Curves (n, n_points) of rows ``start:start + n`` of a set of codes."""
    return model.decode(rows, row_offset=start)


def emulate_chunk(model: CurveModel, rows: np.ndarray, *, start: int = 0,
                  extrapolate: bool = False) -> dict[str, np.ndarray]:
    """``curves`` (n, n_points) of rows ``start:start + n`` of a set of parameters, and ``outside`` (n,): the rows
    outside the training range (only with ``extrapolate``; without, the first one is an InputError)."""
    import warnings

    from curvae.runtime.emulator import ExtrapolationWarning

    with warnings.catch_warnings():  # the caller reports the count once, not once per chunk
        warnings.simplefilter("ignore", ExtrapolationWarning)
        curves = model.emulate(rows, extrapolate=extrapolate, row_offset=start)
    return {"curves": curves, "outside": model.emulator.outside(np.asarray(rows, np.float64))}



class FitTally:
    """What a streamed fit keeps for its summary, in memory that does not grow with the number of targets.

    Counts, sums and a histogram of the residuals (bins 1.2% wide on a log
    scale, so the median and 90th percentile are within 0.6%); the skipped
    rows are kept, since they are written out. Tallies of chunks done in other
    processes combine with :meth:`merge`.
    """

    LOG_LO, LOG_HI, BINS = -12.0, 6.0, 3600

    def __init__(self) -> None:
        self.n = self.n_success = self.nfev = 0
        self.n_ood: int | None = None
        self.hist = np.zeros(self.BINS + 2, np.int64)  # [0] below LOG_LO (incl. 0), [-1] above LOG_HI or not finite
        self.skipped: list[Skipped] = []
        self.ood_threshold = np.array([np.nan])

    def add(self, res: FitResult, skipped: Skipped = Skipped()) -> FitTally:
        r = res.residual
        self.n += int(r.shape[0])
        self.n_success += int(res.success.sum())
        self.nfev += int(res.nfev.sum())
        if res.ood is not None:
            self.n_ood = (self.n_ood or 0) + int(res.ood.sum())  # a skipped row's ood is False
        self.ood_threshold = column(res, "ood_threshold")
        with np.errstate(divide="ignore", invalid="ignore"):
            pos = (np.log10(r) - self.LOG_LO) / (self.LOG_HI - self.LOG_LO) * self.BINS
        idx = np.zeros(r.shape[0], np.int64)  # 0 (log10 of 0 is -inf) stays in the bottom bin
        finite = np.isfinite(pos)
        idx[finite] = np.clip(pos[finite], -1, self.BINS).astype(np.int64) + 1
        idx[~np.isfinite(r)] = self.BINS + 1  # NaN (not fitted) and inf: counted apart, outside the quantiles
        self.hist += np.bincount(idx, minlength=self.BINS + 2)
        if len(skipped):
            self.skipped.append(skipped)
        return self

    def merge(self, other: FitTally) -> None:
        self.n += other.n
        self.n_success += other.n_success
        self.nfev += other.nfev
        if other.n_ood is not None:
            self.n_ood = (self.n_ood or 0) + other.n_ood
        self.hist += other.hist
        self.skipped.extend(other.skipped)
        if np.isfinite(other.ood_threshold).all():
            self.ood_threshold = other.ood_threshold

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the finite residuals (to half a bin); NaN if there are none."""
        finite = self.hist[:-1]
        total = int(finite.sum())
        if total == 0:
            return float("nan")
        k = int(np.searchsorted(np.cumsum(finite), q * total, side="left"))
        if k == 0:
            return 0.0
        width = (self.LOG_HI - self.LOG_LO) / self.BINS
        return float(10 ** (self.LOG_LO + (k - 0.5) * width))

    def summary(self) -> dict[str, Any]:
        """Like :meth:`FitResult.summary` (quantiles to 0.6%), with ``n_ood``, ``n_skipped`` and the first skipped row."""
        first = min(((int(k.rows[0]), str(k.reasons[0])) for k in self.skipped), default=None)
        return {"n": self.n, "n_success": self.n_success, "success_rate": self.n_success / self.n if self.n else 0.0,
                "residual_median": self.quantile(0.5), "residual_p90": self.quantile(0.9),
                "mean_nfev": self.nfev / self.n if self.n else 0.0, "n_ood": self.n_ood,
                "n_skipped": sum(len(k) for k in self.skipped), "skipped_first": first}

    def finish(self, sink, specs: dict, skip_bad_rows: bool, param_names: tuple[str, ...] = ()) -> None:
        """Write the arrays of the whole set: ``ood_threshold``, ``param_names`` (the columns of ``theta``) and,
        with ``skip_bad_rows``, the skipped rows."""
        if "ood_threshold" in specs:
            sink.write("ood_threshold", 0, self.ood_threshold)
        if param_names:
            sink.put("param_names", np.array(param_names, dtype="U64"))
        if skip_bad_rows:
            skipped = Skipped.join(sorted(self.skipped, key=lambda k: int(k.rows[0])))
            sink.put("skipped_rows", skipped.rows)
            sink.put("skipped_reasons", skipped.reasons)
