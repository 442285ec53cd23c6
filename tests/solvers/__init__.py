"""Tests of jaxsa.solvers."""
