"""Tests of jaxsa.processes."""
