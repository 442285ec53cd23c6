"""Tests of jaxsa.experiments."""
