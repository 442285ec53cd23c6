"""Tests of jaxsa.thermo."""
