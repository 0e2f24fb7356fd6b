"""Training: fit the VAE in PyTorch and write a run folder (needs the [train] extra).

Import the submodules you need; this package imports nothing heavy by itself,
so :mod:`curvae.families` stays usable without torch.
"""
