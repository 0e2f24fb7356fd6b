"""The recipe: which network a run trains when the user names none (needs the [train] extra).

A layer above :mod:`curvae.training`: it calls :func:`curvae.training.loop.train` once per candidate network,
scores each on the held-out split and keeps the best (``capacity``), as a grid search wraps an estimator. The
trainer never knows it is searched.
"""
