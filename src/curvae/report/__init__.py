"""Reports: the worked example's figures, training curves and fit overlays, as PNGs and an HTML page.

Needs the ``[plot]`` extra (matplotlib); uses only the torch-free runtime.
"""

from curvae.report.build import REPORT_FILES, build_report

__all__ = ["REPORT_FILES", "build_report"]
