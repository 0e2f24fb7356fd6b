"""curvae: a VAE latent space for curve families, shipped as ONNX.

The package is split in pipeline order: :mod:`curvae.training` (torch) →
:mod:`curvae.export` (torch + onnx) → :mod:`curvae.runtime` (numpy +
onnxruntime + scipy only). Importing :mod:`curvae` itself imports nothing heavy.
"""

__version__ = "0.1.0"
