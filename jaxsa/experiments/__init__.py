"""Experiments: one module per figure or study (settings + runner); used by the CLI."""

from jaxsa.relations.estimators import eta_interval

__all__ = ["eta_interval"]
