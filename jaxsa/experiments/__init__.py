"""Experiments: one module per figure or study (settings + runner); used by the CLI."""
