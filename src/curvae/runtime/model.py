"""``CurveModel``: a loaded bundle that encodes, decodes, samples and fits."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curvae.core.errors import BadRowsError, BundleError, InputError
from curvae.core.seeding import Seed, entropy, rng, row_normals
from curvae.runtime import onnxrt
from curvae.runtime.arrays import as_matrix, check_int
from curvae.runtime.bundle import Manifest, read_bundle, sha256_bytes, vet_graph
from curvae.runtime.fit import (
    FIT_INITS,
    MODEL_FIT_METHODS,
    FitInit,
    FitOptions,
    FitResult,
    ModelFitMethod,
    FitBuilder,
    fit_with_jacobian,
)
from curvae.runtime.observations import Observations, on_model_grid, on_shared_grid
from curvae.runtime.placement import check_placement, node_placement
from curvae.runtime.providers import ProviderSpec, resolve_providers
from curvae.runtime.records import Variant
from curvae.runtime.session import check_sessions, make_session
from curvae.runtime.uncertainty import annotate, check_sigma
from curvae.runtime.versions import check_onnxruntime

#: Largest |z| accepted by :meth:`CurveModel.decode`; the prior is N(0, I), so codes
#: beyond this are input mistakes, and they keep the decoder's output finite.
MAX_ABS_Z = 1e4

#: Targets per internal chunk of :meth:`CurveModel.fit` (its Jacobians and probes are per chunk): 4096 keeps
#: a chunk's arrays in cache, 15-20% faster per target than 16384 here, and its working memory small.
FIT_CHUNK_ROWS = 4096

#: Rows per onnxruntime call. Large batches run in chunks this size so the
#: (rows, hidden) intermediate stays in cache: 1.9x the throughput of one
#: 100k-row call here, and memory stays bounded.
CHUNK_ROWS = 4096


_SESSIONS: dict[tuple, tuple] = {}
_SESSIONS_LOCK = threading.Lock()


def _process_sessions(model: CurveModel) -> tuple:
    """This process's sessions for an unpickled model, created once per graphs and options."""
    args = model._session_args
    key = (hashlib.sha256(model._graphs[0] + model._graphs[1]).hexdigest(), repr(args.get("providers")),
           args.get("threads"), args.get("strict"))
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _, _, opset, ir_version = model.manifest.graphs(model.variant)
            kw = {"opset": opset, "ir_version": ir_version, "strict": bool(args.get("strict")),
                  "threads": args.get("threads")}
            providers = args.get("providers") or resolve_providers("auto")
            enc = make_session(model._graphs[0], providers, name="encoder", **kw)
            dec = make_session(model._graphs[1], providers, name="decoder", **kw)
            check_sessions(model.manifest, enc, dec)
            _SESSIONS[key] = (enc, dec)
        return _SESSIONS[key]


def _check_out(out: object, shape: tuple[int, int], codes: np.ndarray) -> None:
    """``out`` must be a writeable float32 array of ``shape`` that does not overlap the input codes."""
    fix = f"pass np.empty({shape}, np.float32) or leave out=None"
    if not isinstance(out, np.ndarray):
        raise InputError(f"out is a {type(out).__name__}, not a numpy array; {fix}")
    if out.dtype != np.float32 or out.shape != shape:
        raise InputError(f"out has dtype {out.dtype} and shape {out.shape}; it must be float32 of shape {shape} "
                         f"(one row per code, one column per curve point): {fix}")
    if not out.flags.writeable:
        raise InputError(f"out is read-only; {fix}")
    if np.may_share_memory(out, codes):
        raise InputError(f"out overlaps the codes being decoded; {fix}")


class CurveModel:
    """A curvae bundle opened for inference, without torch.

    Use :meth:`load`; both sessions are created once and reused (onnxruntime
    sessions are safe to call from several threads).

    Examples
    --------
    >>> model = CurveModel.load("model")                     # doctest: +SKIP
    >>> codes = model.encode(curves)                         # (n, latent_dim)
    >>> fit = model.fit(targets)                             # fit.z, fit.residual
    """

    def __init__(self, path: Path, manifest: Manifest, encoder, decoder, variant: str | None = None, *,
                 graphs: tuple[bytes, bytes] | None = None, session_args: dict | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self.variant = variant
        self._pair = (encoder, decoder)
        self._graphs = graphs
        self._session_args = session_args or {}
        self._placement: dict[str, dict[str, list[str]]] | None = None

    # A CurveModel pickles as its verified graph bytes, manifest and options, never a session: what a
    # worker process receives is small, re-verified against the manifest's hashes, and opens its
    # sessions on first use (once per process, shared by every model with the same graphs and options).
    def __getstate__(self) -> dict:
        if self._graphs is None:
            raise InputError("this CurveModel was not opened by CurveModel.load, so it cannot be pickled")
        return {"path": str(self.path), "manifest": self.manifest.to_dict(), "variant": self.variant,
                "graphs": self._graphs, "session_args": self._session_args}

    def __setstate__(self, state: dict) -> None:
        manifest = Manifest.from_dict(state["manifest"])
        enc_info, dec_info, opset, ir_version = manifest.graphs(state["variant"])
        for info, data in zip((enc_info, dec_info), state["graphs"]):
            if sha256_bytes(data) != info.sha256:
                raise BundleError(f"a pickled CurveModel carries {info.file} bytes whose sha256 differs from its "
                                  "manifest; it was altered in transit: pickle the model again from its bundle")
            vet_graph(data, opset, ir_version, name=info.file)
        self.__init__(Path(state["path"]), manifest, None, None, state["variant"], graphs=tuple(state["graphs"]),
                      session_args=state["session_args"])

    def __dask_tokenize__(self) -> tuple:
        """A cheap, stable token for Dask (the graphs' hashes and options), so a model is one key in a task graph."""
        enc, dec, _, _ = self.manifest.graphs(self.variant)
        return ("CurveModel", enc.sha256, dec.sha256, self.variant, repr(self._session_args))

    def with_threads(self, threads: int | None) -> CurveModel:
        """This model with ``threads`` intra-op threads per session (for worker processes); sessions open lazily."""
        if self._graphs is None:
            raise InputError("this CurveModel was not opened by CurveModel.load, so it cannot be copied")
        state = self.__getstate__()
        state["session_args"] = {**state["session_args"], "threads": threads}
        other = CurveModel.__new__(CurveModel)
        other.__setstate__(state)
        return other

    @property
    def _enc(self):
        return self._sessions()[0]

    @property
    def _dec(self):
        return self._sessions()[1]

    def _sessions(self):
        if self._pair[0] is None:
            self._pair = _process_sessions(self)
        return self._pair

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        providers: str | Sequence[ProviderSpec] | None = "auto",
        threads: int | None = None,
        strict: bool = False,
        variant: Variant | None = None,
    ) -> CurveModel:
        """Verify a bundle (manifest, file set, sha256) and open its two sessions.

        Parameters
        ----------
        path : path-like
            Bundle folder written by ``curvae export``.
        providers : "auto", str or sequence
            Execution providers; ``"auto"`` takes every available one in
            preference order. See :func:`curvae.runtime.resolve_providers`.
        threads : int, optional
            Intra-op threads per session.
        strict : bool
            Make it an error when the first requested provider is not the one
            that runs (onnxruntime would otherwise fall back to CPU silently).
        variant : {None, "fp16", "int8"}
            Load a precision variant listed in the manifest instead of the
            float32 graphs; its measured error is in ``manifest.variants``.
        """
        resolved = resolve_providers(providers)
        manifest, enc_bytes, dec_bytes = read_bundle(path, variant)
        _, _, opset, ir_version = manifest.graphs(variant)
        check_onnxruntime(onnxrt.load().__version__, manifest.runtime_needed(variant),
                          what=f"bundle {str(path)!r} (opset {opset}, IR version {ir_version})")
        versions = {"opset": opset, "ir_version": ir_version, "strict": strict}
        enc = make_session(enc_bytes, resolved, threads=threads, name="encoder", **versions)
        dec = make_session(dec_bytes, resolved, threads=threads, name="decoder", **versions)
        check_sessions(manifest, enc, dec)
        model = cls(Path(path), manifest, enc, dec, variant, graphs=(enc_bytes, dec_bytes),
                    session_args={"providers": resolved, "threads": threads, "strict": strict})
        if strict:
            first = resolved[0] if isinstance(resolved[0], str) else resolved[0][0]
            for name, placed in model.placement().items():
                check_placement(placed, first, name=name)
        return model

    # ------------------------------------------------------------------ facts
    @property
    def n_points(self) -> int:
        """Number of grid points per curve."""
        return self.manifest.n_points

    @property
    def latent_dim(self) -> int:
        """Size of the latent code."""
        return self.manifest.latent_dim

    @property
    def grid(self) -> NDArray[np.float64]:
        """The x values of the curve points, shape (n_points,)."""
        return np.asarray(self.manifest.grid, dtype=np.float64)

    @property
    def providers(self) -> dict[str, list[str]]:
        """The providers each session may use, best first, per graph (see :meth:`placement` for who ran what)."""
        return {"encoder": self._enc.get_providers(), "decoder": self._dec.get_providers()}

    def placement(self) -> dict[str, dict[str, list[str]]]:
        """Which execution provider executed each node of each graph, from onnxruntime's profiler.

        Runs each graph once on a 2-row input in a profiled session opened
        with this model's providers and options; the result is cached.

        Returns
        -------
        dict
            ``{"encoder": {provider: [op types]}, "decoder": {...}}``.
        """
        if self._placement is None:
            if self._graphs is None:
                raise InputError("this CurveModel was not opened by CurveModel.load, so its graphs are not at hand")
            self._placement = {name: node_placement(data, name=name, **self._session_args)
                               for name, data in zip(("encoder", "decoder"), self._graphs)}
        return self._placement

    # ------------------------------------------------------------- inference
    def _curves(self, curves: ArrayLike, name: str = "curves", row_offset: int = 0) -> NDArray[np.float32]:
        return as_matrix(curves, name=name, n_cols=self.n_points, col_name="points", row_offset=row_offset)

    def _codes(self, z: ArrayLike, name: str = "z", row_offset: int = 0) -> NDArray[np.float32]:
        return as_matrix(z, name=name, n_cols=self.latent_dim, col_name="latent dims", row_offset=row_offset)

    def posterior(self, curves: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Return the encoder's posterior parameters.

        Parameters
        ----------
        curves : array-like of shape (n_curves, n_points)

        Returns
        -------
        mu, logvar : ndarray of shape (n_curves, latent_dim), float32
        """
        x = self._curves(curves)
        _, mu, logvar = self._run_encoder(x, np.zeros((x.shape[0], self.latent_dim), np.float32))
        return mu, logvar

    def encode(self, curves: ArrayLike, *, sample: bool = False, seed: Seed = None,
               row_offset: int = 0, chunk_rows: int = CHUNK_ROWS) -> NDArray[np.float32]:
        """Encode curves to latent codes.

        Parameters
        ----------
        curves : array-like of shape (n_curves, n_points)
        sample : bool
            False returns the posterior mean μ; True returns
            ``z = μ + exp(logvar / 2) · eps`` with ``eps ~ N(0, I)`` drawn by numpy.
        seed : int, Generator or None
            Seeds ``eps`` when ``sample`` is True. Each row's ``eps`` comes from
            ``(seed, its row index)`` (:func:`curvae.core.seeding.row_normals`),
            so encoding a set in chunks gives the same codes as encoding it whole.
        row_offset : int
            Index of the first row within a larger set (a chunk of it): used by
            the seeded draws and by error messages, which name that set's rows.
        chunk_rows : int
            Rows per onnxruntime call (see :data:`CHUNK_ROWS`); the codes do not depend on it.

        Returns
        -------
        ndarray of shape (n_curves, latent_dim), float32
        """
        check_int("chunk_rows", chunk_rows)
        x = self._curves(curves, row_offset=row_offset)
        if sample:
            n = x.shape[0]
            eps = row_normals(entropy(seed), row_offset, row_offset + n, (self.latent_dim,)).astype(np.float32)
        else:
            eps = np.zeros((x.shape[0], self.latent_dim), np.float32)
        z, mu, _ = self._run_encoder(x, eps, row_offset, chunk_rows)
        return z if sample else mu

    def encode_with_noise(self, curves: ArrayLike, eps: ArrayLike) -> tuple[NDArray[np.float32], ...]:
        """Run the encoder with explicit noise.

        Parameters
        ----------
        curves : array-like of shape (n_curves, n_points)
        eps : array-like of shape (n_curves, latent_dim)

        Returns
        -------
        z, mu, logvar : ndarray of shape (n_curves, latent_dim), float32
        """
        x = self._curves(curves)
        e = self._codes(eps, name="eps")
        if e.shape[0] != x.shape[0]:
            raise InputError(f"eps has {e.shape[0]} rows but curves has {x.shape[0]}; pass one eps row per curve")
        return self._run_encoder(x, e)

    def decode(self, z: ArrayLike, *, out: NDArray[np.float32] | None = None,
               row_offset: int = 0, chunk_rows: int = CHUNK_ROWS) -> NDArray[np.float32]:
        """Decode latent codes to curves.

        Parameters
        ----------
        z : array-like of shape (n_codes, latent_dim)
        out : ndarray of shape (n_codes, n_points), float32, optional
            Written in place and returned. Reusing one buffer across calls
            skips allocating (and the OS zeroing) a fresh result: about 10%
            of the time of a 100k-row decode.

        Returns
        -------
        ndarray of shape (n_codes, n_points), float32
            ``out`` when given.

        ``row_offset`` is the index of the first row within a larger set, for
        error messages that name that set's rows; ``chunk_rows`` is the rows
        per onnxruntime call (see :data:`CHUNK_ROWS`), which the curves do not depend on.
        """
        check_int("chunk_rows", chunk_rows)
        codes = as_matrix(z, name="z", n_cols=self.latent_dim, col_name="latent dims", max_abs=MAX_ABS_Z,
                          row_offset=row_offset,
                          bound_hint="latent codes live on the N(0, I) prior's scale: pass codes from encode/fit/sample")
        if out is not None:
            _check_out(out, (codes.shape[0], self.n_points), codes)
        return self._run_decoder(codes, out, chunk_rows)

    def sample(self, n: int, *, seed: Seed = None) -> NDArray[np.float32]:
        """Draw ``n`` codes from the N(0, I) prior and decode them.

        Returns
        -------
        ndarray of shape (n, n_points), float32
        """
        check_int("n", n)
        z = rng(seed).standard_normal((int(n), self.latent_dim)).astype(np.float32)
        return self._run_decoder(z)

    def fit(
        self,
        targets: ArrayLike,
        *,
        method: ModelFitMethod = FitOptions.method,
        init: FitInit = FitOptions.init,
        n_starts: int = FitOptions.n_starts,
        seed: Seed = None,
        max_iter: int = FitOptions.max_iter,
        prior_weight: float = FitOptions.prior_weight,
        bound: float | None = FitOptions.bound,
        uncertainty: bool = True,
        sigma: float | ArrayLike | None = None,
        ood_quantile: float = 0.99,
        grid: ArrayLike | None = None,
        clip_range: bool = False,
        observations: Observations | None = None,
        chunk_rows: int = FIT_CHUNK_ROWS,
        row_offset: int = 0,
    ) -> FitResult:
        """Find the latent code whose decoding best matches each target.

        Parameters
        ----------
        targets : array-like of shape (n_targets, n_points)
        method : {"lm", "nelder-mead", "least-squares"}
            ``"lm"``: Levenberg-Marquardt batched over all targets (fast).
            ``"nelder-mead"``: scipy per target, as in the worked example.
            ``"least-squares"``: scipy ``least_squares`` per target.
            ``"mcmc"``: ``"lm"``, then posterior samples of z by emcee
            (``[mcmc]`` extra; see :mod:`curvae.runtime.mcmc`).
        init : {"encoder", "zero"}
            Start from the encoder's μ (amortised) or from z = 0.
        n_starts : int
            Extra starts drawn from the prior are tried when > 1; the lowest
            residual wins.
        seed : int, Generator or None
            Seeds the extra starts and the MCMC walkers, per target: target
            ``i`` draws from ``(seed, row_offset + i)``, so a target's fit does
            not depend on how a set of targets is chunked.
        max_iter : int
            Iteration cap (per target for the scipy methods).
        prior_weight : float
            Adds ``prior_weight · |z|²`` to the cost (a Gaussian prior on z).
        bound : float, optional
            Keeps every coordinate of z within ``[-bound, bound]``.
        uncertainty : bool
            Also compute the Laplace covariance of z, the decoded ±2σ band
            and the out-of-family flag (no extra decoder call with ``"lm"``;
            see :mod:`curvae.runtime.uncertainty`).
        sigma : float, array-like of shape (n_points,), or None
            The noise level of the targets, one value or one per point; None
            estimates it per target from the residual. Per-point values also
            weigh the fit: it minimises ``Σ_p (r_p/σ_p)²·mean(σ²)``, the plain
            squared error when sigma is uniform (so ``prior_weight`` keeps its
            meaning).
        ood_quantile : float
            A target is out of family when its RMS error per point exceeds
            this quantile of the held-out fits' recorded at export.
        grid : array-like of shape (m,), optional
            The targets' own x values, when they are not on the model grid:
            ``targets`` is then (n_targets, m) and the decoded curve is
            linearly interpolated at these x (see :mod:`curvae.runtime.observations`).
            NaN in ``targets`` marks an unobserved point, with or without a grid.
        clip_range : bool
            Drop points outside the model grid's range instead of refusing them.
        observations : Observations, optional
            Targets already written as observations (e.g. ragged curves from
            :func:`curvae.runtime.observations.on_own_grids`); ``targets`` is then ignored.
        chunk_rows : int
            Targets are fitted in chunks of this many rows, so the working
            memory beyond the inputs and outputs stays flat as their number
            grows; the results do not depend on it.
        row_offset : int
            Index of the first target within a larger set, when fitting a chunk
            of it: seeded draws and error messages use that set's row numbers.

        Returns
        -------
        FitResult
            ``z`` (n_targets, latent_dim), ``residual``, ``success``, ``nfev``,
            ``message`` (n_targets,) and ``x_hat`` (n_targets, n_points); with
            ``uncertainty``, also ``cov``, ``z_std``, ``sigma``, ``chi2``,
            ``band_lo``, ``band_hi``, ``ill_conditioned``, ``ood``,
            ``ood_threshold`` and ``ood_reason``.
        """
        check_int("row_offset", row_offset, minimum=0)
        obs = observations if observations is not None else self._observe(targets, grid, clip_range, row_offset)
        t = obs.values if obs is not None else self._curves(targets, name="targets", row_offset=row_offset)
        if method not in MODEL_FIT_METHODS:
            raise InputError(f"method={method!r} is not a fit method; choose one of {', '.join(MODEL_FIT_METHODS)}")
        if init not in FIT_INITS:
            raise InputError(f"init={init!r} is not supported; choose one of {', '.join(map(repr, FIT_INITS))}")
        check_int("n_starts", n_starts)
        check_int("max_iter", max_iter)
        if not np.isfinite(prior_weight) or prior_weight < 0:
            raise InputError(f"prior_weight={prior_weight!r} must be finite and >= 0")
        if bound is not None and not (np.isfinite(bound) and bound > 0):
            raise InputError(f"bound={bound!r} must be a positive finite number or None")
        noise = check_sigma(sigma, self.n_points)
        if obs is not None and noise is not None and not np.all(noise == noise[0]):
            raise InputError("a per-point sigma applies to complete targets on the model grid; give one sigma for "
                             "targets with missing points or their own grid")
        if not (isinstance(ood_quantile, (int, float)) and 0 < ood_quantile < 1):
            raise InputError(f"ood_quantile={ood_quantile!r} must be in (0, 1), e.g. 0.99")
        check_int("chunk_rows", chunk_rows)
        if method == "mcmc" and obs is not None:
            raise InputError("method='mcmc' needs complete targets on the model grid; fit targets with missing points "
                             "or their own grid with 'lm'")
        emu = None if self.manifest.fit_residuals is None else self.manifest.fit_residuals.emulator_var()
        var = None if noise is None else noise**2 + (emu if emu is not None and obs is None else 0.0)
        # Per-point variances (σ², plus the model's own error where the bundle records it) weigh the fit itself.
        weights = None if var is None or np.all(var == var[0]) else np.mean(var) / var
        opts = FitOptions(method="lm" if method == "mcmc" else method, max_iter=int(max_iter),
                          prior_weight=float(prior_weight), bound=bound, weights=weights, init=init,
                          n_starts=int(n_starts))
        job = {"opts": opts, "uncertainty": uncertainty or method == "mcmc", "noise": noise,
               "quantile": float(ood_quantile), "mcmc": method == "mcmc",
               "seed": entropy(seed) if n_starts > 1 or method == "mcmc" else 0}
        n = t.shape[0]
        # Internal row chunks keep the working memory (Jacobians, probes) flat however many targets there are.
        if n <= chunk_rows:
            return self._fit_rows(t, obs, job, row_offset)
        out = FitBuilder(n)  # each output allocated once, filled chunk by chunk
        for i in range(0, n, chunk_rows):
            out.add(self._fit_rows(t[i:i + chunk_rows], None if obs is None else obs.take(slice(i, i + chunk_rows)),
                                   job, row_offset + i))
        return out.result()

    def _fit_rows(self, t: NDArray[np.float32], obs: Observations | None, job: dict, start: int) -> FitResult:
        """Fit one chunk of targets: start, engine, uncertainty, and MCMC when asked."""
        opts: FitOptions = job["opts"]
        n = t.shape[0]
        if opts.init == "zero":
            z0 = np.zeros((n, self.latent_dim), np.float32)
        elif obs is None:
            z0 = self.encode(t, row_offset=start)
        elif obs.aligned:  # the encoder needs whole curves: a mask's gaps are interpolated
            z0 = self.encode(obs.impute(t, self.grid), row_offset=start)
        else:  # outside a target's own x-range: the prior mean's decoding, then once more from the code found
            z0 = np.zeros((n, self.latent_dim), np.float32)
            for _ in range(2):
                z0 = self.encode(obs.impute(self._run_decoder(z0), self.grid), row_offset=start)
        if opts.n_starts == 1:
            res, jac = fit_with_jacobian(self._run_decoder, t, z0, opts, obs)
        else:
            res, jac = self._multi_start(t, z0, opts.n_starts, job["seed"], start, opts, obs)
        if not job["uncertainty"]:
            return res
        prior = opts.prior_weight > 0
        res = annotate(res, jac, t, sigma=job["noise"], prior=prior, record=self.manifest.fit_residuals,
                       quantile=job["quantile"], obs=obs)
        return self._sample(res, t, job["noise"], prior, job["seed"], start) if job["mcmc"] else res

    def _observe(self, targets: ArrayLike, grid: ArrayLike | None, clip_range: bool,
                 row_offset: int = 0) -> Observations | None:
        """Observations for targets on their own grid or with NaN; None for complete targets on the model grid."""
        if grid is not None:
            raw = as_matrix(targets, name="targets", col_name="points", allow_nan=True, min_cols=1,
                            row_offset=row_offset)
            x = as_matrix(np.atleast_2d(np.asarray(grid, dtype=np.float64)), name="grid", col_name="x values",
                          min_cols=1)[0]
            return on_shared_grid(raw, x, self.grid, latent_dim=self.latent_dim, clip_range=clip_range,
                                  names=lambda i: str(i + row_offset))[0]
        t = as_matrix(targets, name="targets", n_cols=self.n_points, col_name="points", allow_nan=True,
                      row_offset=row_offset)
        has_nan = any(np.isnan(t[i:i + CHUNK_ROWS]).any() for i in range(0, t.shape[0], CHUNK_ROWS))
        return on_model_grid(t, latent_dim=self.latent_dim, row_offset=row_offset) if has_nan else None

    def _sample(self, res: FitResult, t, noise, prior: bool, seed: int, start: int) -> FitResult:
        """MCMC around the LM optimum; the covariance and band become the samples' own."""
        from curvae.runtime.mcmc import sample_posterior

        n, p = t.shape
        sigma = np.broadcast_to(noise if noise is not None else res.sigma[:, None], (n, p))
        samples = sample_posterior(self._run_decoder, t, res.z, res.z_std, sigma, prior=prior, seed=seed,
                                   row_offset=start)
        m = samples.shape[1]
        centred = samples.astype(np.float64) - samples.mean(axis=1, keepdims=True)
        cov = np.einsum("nmi,nmj->nij", centred, centred) / max(m - 1, 1)
        curves = self._run_decoder(samples.reshape(-1, self.latent_dim)).reshape(n, m, p)  # one batched call
        lo, hi = np.quantile(curves, [0.02275, 0.97725], axis=1)
        emu = None if self.manifest.fit_residuals is None else self.manifest.fit_residuals.emulator_var()
        t_lo, t_hi = lo, hi
        if emu is not None:  # the true curve: the samples' spread and the model's own error, in quadrature
            mid, half = (hi + lo) / 2, np.sqrt(((hi - lo) / 2) ** 2 + 4 * emu)
            t_lo, t_hi = mid - half, mid + half
        return replace(res, samples=samples, cov=cov, z_std=np.sqrt(np.diagonal(cov, axis1=1, axis2=2)),
                       band_lo=t_lo.astype(np.float32), band_hi=t_hi.astype(np.float32),
                       band_z_lo=lo.astype(np.float32), band_z_hi=hi.astype(np.float32))

    def _multi_start(self, t, z0, n_starts: int, seed: int, start: int, opts: FitOptions,
                     obs: Observations | None = None) -> tuple[FitResult, np.ndarray]:
        """Fit from ``z0`` and ``n_starts - 1`` prior draws per target; keep each target's best converged fit."""
        n = t.shape[0]
        draws = row_normals(seed, start, start + n, (n_starts - 1, self.latent_dim))  # (n, k - 1, d)
        extra = np.ascontiguousarray(draws.transpose(1, 0, 2), dtype=np.float32)
        starts = np.concatenate([z0[None], extra]).reshape(-1, self.latent_dim)
        res, jac = fit_with_jacobian(self._run_decoder, np.tile(t, (n_starts, 1)), starts, opts,
                                     None if obs is None else obs.tile(n_starts))
        resid = np.where(res.success, res.residual, np.inf).reshape(n_starts, n)
        resid = np.where(np.isfinite(resid).any(axis=0), resid, res.residual.reshape(n_starts, n))
        best = np.nanargmin(np.where(np.isnan(resid), np.inf, resid), axis=0) * n + np.arange(n)
        nfev = res.nfev.reshape(n_starts, n).sum(axis=0)
        return FitResult(z=res.z[best], residual=res.residual[best], success=res.success[best], nfev=nfev,
                         message=res.message[best], x_hat=res.x_hat[best], rms=res.rms[best], n_obs=res.n_obs[best],
                         x_hat_obs=None if res.x_hat_obs is None else res.x_hat_obs[best]), jac[best]

    # -------------------------------------------------------------- sessions
    def _run_encoder(self, x: NDArray[np.float32], eps: NDArray[np.float32], row_offset: int = 0,
                     chunk: int = CHUNK_ROWS):
        if x.shape[0] <= chunk:
            outs = tuple(self._enc.run(None, {"x": x, "eps": eps}))
        else:
            outs = tuple(np.empty((x.shape[0], self.latent_dim), np.float32) for _ in range(3))
            for i in range(0, x.shape[0], chunk):
                parts = self._enc.run(None, {"x": x[i:i + chunk], "eps": eps[i:i + chunk]})
                for dst, part in zip(outs, parts):
                    dst[i:i + chunk] = part
        bad = ~np.isfinite(outs[0]).all(axis=1) | ~np.isfinite(outs[2]).all(axis=1)  # (n,): cheap, n × latent
        if bad.any():
            rows = np.flatnonzero(bad) + row_offset
            raise BadRowsError(f"curves rows {rows[:5].tolist()}{'…' if rows.size > 5 else ''} give non-finite codes; "
                               "their values are far outside what the model was trained on: check their scale", rows)
        return outs

    def _run_decoder(self, z: NDArray[np.float32], out: NDArray[np.float32] | None = None,
                     chunk: int = CHUNK_ROWS) -> NDArray[np.float32]:
        if out is None and z.shape[0] <= chunk:
            return self._dec.run(None, {"z": z})[0]
        if out is None:
            out = np.empty((z.shape[0], self.n_points), np.float32)
        for i in range(0, z.shape[0], chunk):
            out[i:i + chunk] = self._dec.run(None, {"z": z[i:i + chunk]})[0]
        return out

    def __repr__(self) -> str:
        return (f"CurveModel({str(self.path)!r}, n_points={self.n_points}, latent_dim={self.latent_dim}, "
                f"family={self.manifest.family.get('name')!r})")
