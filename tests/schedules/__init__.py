"""Tests of jaxsa.schedules."""
