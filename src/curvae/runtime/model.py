"""``CurveModel``: a loaded bundle that encodes, decodes, samples and fits."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curvae.core.errors import InputError
from curvae.core.seeding import Seed, entropy, rng, row_normals
from curvae.runtime.arrays import as_matrix, check_int, check_out
from curvae.runtime.bundle.extras import read_emulator, read_head
from curvae.runtime.bundle.format import Manifest, read_bundle
from curvae.runtime.bundle.records import Variant
from curvae.runtime.bundle.versions import check_onnxruntime
from curvae.runtime.engine import onnxrt
from curvae.runtime.engine.cache import process_sessions
from curvae.runtime.engine.lanes import MIN_LANE_ROWS, model_lanes
from curvae.runtime.engine.placement import check_placement, node_placement
from curvae.runtime.engine.portable import Portable
from curvae.runtime.engine.providers import ProviderSpec, provider_name, resolve_providers
from curvae.runtime.engine.runner import CHUNK_ROWS, SMALL_ROWS, encode_means, run_decoder, run_encoder
from curvae.runtime.engine.session import check_sessions, make_session
from curvae.runtime.fitting.engine import FitInit, FitOptions, FitResult, ModelFitMethod
from curvae.runtime.fitting.observations import Observations
from curvae.runtime.fitting.orchestrate import run_fit
from curvae.runtime.parametric import MAX_ABS_Z, Parametric




#: Targets per internal chunk of :meth:`CurveModel.fit` (its Jacobians and probes are per chunk): 4096 keeps
#: a chunk's arrays in cache, 15-20% faster per target than 16384 here, and its working memory small.
FIT_CHUNK_ROWS = 4096



class CurveModel(Portable, Parametric):
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
                 graphs: tuple[bytes, bytes] | None = None, session_args: dict | None = None,
                 head: bytes | None = None, emulator: bytes | None = None) -> None:
        self.path = path
        self._head, self._param_head = head, None  # params.onnx's verified bytes; its session opens on first use
        self._emulator_bytes, self._emulator = emulator, None  # emulator.onnx's, likewise
        self.manifest = manifest
        self.variant = variant
        self._pair = (encoder, decoder)
        self._graphs = graphs
        self._session_args = session_args or {}
        self._placement: dict[str, dict[str, list[str]]] | None = None
        self._lane_pair: tuple | None | bool = False  # large batches' lanes: False until first looked up

    @property
    def _enc(self):
        return self._sessions()[0]

    @property
    def _dec(self):
        return self._sessions()[1]

    def _sessions(self):
        if self._pair[0] is None:
            self._pair = process_sessions(self._graphs, self.manifest, self.variant, self._session_args)
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
                    session_args={"providers": resolved, "threads": threads, "strict": strict},
                    head=read_head(path, manifest), emulator=read_emulator(path, manifest))
        if strict:
            first = provider_name(resolved[0])
            for name, placed in model.placement().items():
                check_placement(placed, first, name=name)
        return model

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

    def _curves(self, curves: ArrayLike) -> NDArray[np.float32]:
        return as_matrix(curves, name="curves", n_cols=self.n_points, col_name="points")

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
        x = as_matrix(curves, name="curves", n_cols=self.n_points, col_name="points", row_offset=row_offset)
        d = self.manifest.latent_dim
        if not sample and x.shape[0] <= SMALL_ROWS:
            return encode_means(self._enc, x, d, row_offset)
        if sample:
            eps = row_normals(entropy(seed), row_offset, row_offset + x.shape[0], (d,)).astype(np.float32)
        else:
            eps = np.zeros((x.shape[0], d), np.float32)
        z, mu, _ = run_encoder(self._enc, x, eps, d, row_offset, chunk_rows, lanes=self._lane(0, x.shape[0]))
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
        e = as_matrix(eps, name="eps", n_cols=self.latent_dim, col_name="latent dims")
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
        if out is None and codes.shape[0] <= chunk_rows:  # one call: straight to the session
            return self._dec.run(None, {"z": codes})[0]
        if out is not None:
            check_out(out, (codes.shape[0], self.n_points), codes)
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
        params: bool = True,
        space: str = "z",
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
            (``[mcmc]`` extra; see :mod:`curvae.runtime.fitting.mcmc`).
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
            see :mod:`curvae.runtime.fitting.uncertainty`).
        sigma : float, array-like of shape (n_points,), or None
            The noise level of the targets, one value or one per point; None
            estimates it per target. Given, the per-point variance σ² + σ_emu²
            (the model's own error, when recorded) weighs the fit, the
            covariance and χ² (:mod:`curvae.runtime.fitting.uncertainty`).
        ood_quantile : float
            The quantile of in-family fits above which a target is out of family.
        grid : array-like of shape (m,), optional
            The targets' own x values, when they are not on the model grid:
            ``targets`` is then (n_targets, m) and the decoded curve is
            linearly interpolated at these x (see :mod:`curvae.runtime.fitting.observations`).
            NaN in ``targets`` marks an unobserved point, with or without a grid.
        clip_range : bool
            Drop points outside the model grid's range instead of refusing them.
        observations : Observations, optional
            Targets already written as observations (e.g. ragged curves from
            :func:`curvae.runtime.fitting.observations.on_own_grids`); ``targets`` is then ignored.
        chunk_rows : int
            Targets are fitted in chunks of this many rows, so the working
            memory beyond the inputs and outputs stays flat as their number
            grows; the results do not depend on it.
        row_offset : int
            Index of the first target within a larger set, when fitting a chunk
            of it: seeded draws and error messages use that set's row numbers.
        params : bool
            With a parameter head in the bundle, also the curves' parameters ``theta`` and (with
            ``uncertainty``) their error bars (:mod:`curvae.runtime.fitting.params`).
        space : {"z", "theta"}
            ``"theta"`` fits the curve's parameters through the bundle's emulator instead of the latent code
            (:mod:`curvae.runtime.fitting.theta`): inside the training range, under a uniform prior there (so
            ``bound`` and ``prior_weight`` do not apply); the result's ``theta`` and its intervals are the fit's
            own, and ``z`` is the code the emulator decodes from. ``method="mcmc"`` samples θ.

        Returns
        -------
        FitResult
            ``z``, ``residual``, ``success``, ``nfev``, ``message``, ``x_hat``; with ``uncertainty`` also the
            covariance, the bands and the out-of-family flag (every field: :class:`FitResult`).
        """
        fw, finish = self._fit_space(space, params)
        return run_fit(fw, targets, method=method, init=init, n_starts=n_starts, seed=seed, max_iter=max_iter,
                       prior_weight=prior_weight, bound=bound, uncertainty=uncertainty, sigma=sigma,
                       ood_quantile=ood_quantile, grid=grid, clip_range=clip_range, observations=observations,
                       row_offset=row_offset, chunk_rows=chunk_rows, finish=finish)

    def _run_encoder(self, x: NDArray[np.float32], eps: NDArray[np.float32]):
        return run_encoder(self._enc, x, eps, self.latent_dim, lanes=self._lane(0, x.shape[0]))

    def _run_decoder(self, z: NDArray[np.float32], out: NDArray[np.float32] | None = None,
                     chunk: int = CHUNK_ROWS) -> NDArray[np.float32]:
        return run_decoder(self._dec, z, self.n_points, out, chunk, lanes=self._lane(1, z.shape[0]))

    def _lane(self, which: int, rows: int):
        """The encoder's (0) or decoder's (1) lanes for a batch of ``rows``, when it is large enough to use them."""
        if rows < MIN_LANE_ROWS:
            return None
        if self._lane_pair is False:
            self._lane_pair = model_lanes(self._graphs, self.manifest, self.variant, self._session_args)
        return None if self._lane_pair is None else self._lane_pair[which]

    def __repr__(self) -> str:
        return (f"CurveModel({str(self.path)!r}, n_points={self.n_points}, latent_dim={self.latent_dim}, "
                f"family={self.manifest.family.get('name')!r})")
