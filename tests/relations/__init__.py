"""Tests of jaxsa.relations."""
