"""Shared code for the generative-models notebook series: data, models, training, metrics, plots, results."""

__version__ = "0.1.0"
