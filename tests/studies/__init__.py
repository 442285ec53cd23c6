"""Tests of jaxsa.studies."""
