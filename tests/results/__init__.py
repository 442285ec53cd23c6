"""Tests of jaxsa.results."""
