"""The HTML report of an ablation grid."""

from fer.report.render import render_report

__all__ = ["render_report"]
