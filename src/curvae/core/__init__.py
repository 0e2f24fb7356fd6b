"""Pieces every layer uses: the error hierarchy, atomic writes and seeding.

Depends on numpy only, so training, export, runtime, report and the CLI can
all import it without pulling in each other.
"""
