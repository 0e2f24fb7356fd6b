"""The parameter side of a :class:`~curvae.runtime.model.CurveModel`: z → θ, θ → curve, and fits over θ.

A bundle exported from curves with known parameters holds two small extra graphs:
``params.onnx`` (z → θ, :mod:`curvae.runtime.fitting.params`) and ``emulator.onnx``
(θ → curve and z, :mod:`curvae.runtime.emulator`). Their sessions open on first use.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curvae.core.errors import InputError
from curvae.runtime.arrays import as_matrix, check_int, check_out
from curvae.runtime.emulator import Emulator
from curvae.runtime.engine.runner import CHUNK_ROWS
from curvae.runtime.engine.session import make_session
from curvae.runtime.fitting.forward import Forward
from curvae.runtime.fitting.params import ParamHead
from curvae.runtime.fitting.theta import start_in_box, theta_forward, theta_result

#: Largest |z| accepted by decode: the prior is N(0, I), so larger codes are input mistakes.
MAX_ABS_Z = 1e4
#: What a fit moves: the latent code, or the curve's parameters through the emulator.
FIT_SPACES = ("z", "theta")


class Parametric:
    """The parameter half of :class:`~curvae.runtime.model.CurveModel` (it sets the attributes used here)."""

    @property
    def param_head(self) -> ParamHead | None:
        """The bundle's parameter head (``params.onnx``, z → θ), or None when it has none."""
        if self._head is not None and self._param_head is None:
            info = self.manifest
            # One thread: the head is tiny, and a pool of its own would spin beside the decoder's between calls.
            self._param_head = ParamHead(make_session(
                self._head, ["CPUExecutionProvider"], threads=1, name="params", opset=info.opset,
                ir_version=info.ir_version), info.params)
        return self._param_head

    @property
    def emulator(self) -> Emulator | None:
        """The bundle's emulator (``emulator.onnx``, θ → curve and z), or None when it has none."""
        if self._emulator_bytes is not None and self._emulator is None:
            info, args = self.manifest, self._session_args
            self._emulator = Emulator(make_session(
                self._emulator_bytes, args.get("providers") or ["CPUExecutionProvider"], threads=args.get("threads"),
                name="emulator", opset=info.opset, ir_version=info.ir_version), info.emulator)
        return self._emulator

    def _need_emulator(self) -> Emulator:
        if self.emulator is None:
            raise InputError(f"bundle {str(self.path)!r} has no emulator: its curves' parameters were not known at "
                             "export (or it was exported with --no-params or --no-emulator, or before format 1.4); train on a family, "
                             "or on an .npz with params, and export again")
        return self.emulator

    def emulate(self, theta: ArrayLike, *, extrapolate: bool = False, codes: bool = False,
                out: NDArray[np.float32] | None = None, row_offset: int = 0,
                chunk_rows: int = CHUNK_ROWS) -> NDArray[np.float32] | tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The curves of parameter vectors: the bundle as a forward emulator.

        Parameters
        ----------
        theta : array-like of shape (n, k)
            Parameters in the order of ``manifest.emulator.names`` (``model.emulator.names``).
        extrapolate : bool
            A value outside the training range raises InputError naming it; with True it is emulated anyway,
            with an :class:`~curvae.runtime.emulator.ExtrapolationWarning` (``model.emulator.outside(theta)``
            is the per-row flag).
        codes : bool
            Also return the latent code each curve decodes from, (n, latent_dim).
        out : ndarray of shape (n, n_points), float32, optional
            Written in place and returned.
        row_offset, chunk_rows : int
            As in :meth:`decode`: the index of the first row within a larger set (for messages), and the rows
            per onnxruntime call (the curves depend on it only through float32 rounding).

        Returns
        -------
        ndarray of shape (n, n_points), float32; with ``codes`` also ndarray of shape (n, latent_dim)
        """
        emu = self._need_emulator()
        check_int("chunk_rows", chunk_rows)
        t = emu.theta(theta, row_offset=row_offset)
        emu.check(t, extrapolate=extrapolate, row_offset=row_offset)
        n = t.shape[0]
        if out is None and n <= chunk_rows and not codes:  # one call: straight to the session
            return emu.session.run(["x_hat"], {"theta": t})[0]
        if out is not None:
            check_out(out, (n, self.n_points), t)
        x = out if out is not None else np.empty((n, self.n_points), np.float32)
        z = np.empty((n, self.latent_dim), np.float32) if codes else None
        for i in range(0, n, chunk_rows):
            xi, zi = emu.run(t[i:i + chunk_rows])
            x[i:i + chunk_rows] = xi
            if z is not None:
                z[i:i + chunk_rows] = zi
        return (x, z) if codes else x

    def params(self, z: ArrayLike) -> NDArray[np.float64]:
        """The parameters θ of the curves that codes ``z`` (n, latent_dim) decode to, shape (n, k), by the
        bundle's head (names: ``manifest.params.names``); a bundle without one raises InputError."""
        if self.param_head is None:
            raise InputError(f"bundle {str(self.path)!r} has no parameter head: its curves' parameters were not "
                             "known at export; train on a family, or on an .npz with params, and export again")
        return self.param_head(as_matrix(z, name="z", n_cols=self.latent_dim, col_name="latent dims",
                                         max_abs=MAX_ABS_Z))

    def _theta_fit(self):
        """The forward function of a parameter-space fit, and what turns its result into θ."""
        emu = self._need_emulator()
        head = self.param_head

        def start(t: NDArray[np.float32], offset: int) -> NDArray[np.float32]:
            if head is None:  # no z → θ head: the centre of the range
                return np.zeros((t.shape[0], emu.record.k), np.float32)
            with np.errstate(invalid="ignore", divide="ignore"):
                return start_in_box(emu.to_v(head(self.encode(t, row_offset=offset))))

        fw = theta_forward(emu.run_v, self.grid, emu.record.k, start, emu.record.theta_fit)
        return fw, lambda res: theta_result(res, from_v=emu.from_v, u_half=emu.u_half,
                                            transforms=emu.record.transforms,
                                            codes=lambda th: emu.run(th.astype(np.float32))[1])

    def _fit_space(self, space: str, params: bool):
        """The forward function a fit in ``space`` moves through, and what finishes each chunk of its results."""
        if space not in FIT_SPACES:
            raise InputError(f"space={space!r} is not a fit space; choose 'z' (the latent code) or 'theta' (the "
                             "curve's parameters, through the bundle's emulator)")
        if space == "theta":
            return self._theta_fit()
        fw = Forward(run=self._run_decoder, grid=self.grid, dim=self.latent_dim,
                     start=lambda t, offset: self.encode(t, row_offset=offset), record=self.manifest.fit_residuals)
        head = self.param_head if params else None
        return fw, None if head is None else head.annotate
