"""The check of a digits-experiment document (`check_images_doc`), shared by
tests/experiments/test_images.py and tests/test_cli_commands.py: record keys, closed-form D0 and
W1 of the start clouds, confidence intervals, and memorisation by the exact field."""

from __future__ import annotations

import json
import math

import pytest

from jaxsa.experiments.images import load_digits_data
KEYS = {"eta", "eta_ci", "c1", "c1_ci", "c2", "entropy_bound", "entropy_bound_ci", "D0",
        "W1_q_p", "W1_init", "W1_init_exact", "W1_noise_floor", "model_error", "model_error_ci",
        "eq77_holds", "delta_W1", "delta_W1_ci", "eta_resolved", "n_particles", "n_replicates"}


def check_images_doc(s, doc):
    """Assert that ``doc`` (the JSON document of ``run_images(s)``) is what ``s`` asks for."""
    json.dumps(doc)  # JSON-ready
    recs = doc["records"]
    fields = [(a, "learned") for a in s.schedules] + [(a, "exact") for a in s.exact]
    assert {(r["schedule"], r["field"], r["perturbation"]) for r in recs} == {
        (a, f, b) for a, f in fields for b in ("mean", "variance")}
    n_data = len(load_digits_data(s.n_data))  # s.n_data images, or all 1,797 (None)
    for r in recs:
        assert KEYS <= set(r)
        assert r["n_particles"] == s.audit.n_particles and r["dim"] == 64 and r["n_data"] == n_data
        assert r["ode_success"] and r["crn"]
        # D0 closed forms: exp(|δ|²) - 1 and (1/(s sqrt(2 - s²)))^d - 1
        d0 = (math.expm1(s.shift**2) if r["perturbation"] == "mean"
              else (1 / (s.std * math.sqrt(2 - s.std**2))) ** 64 - 1)
        assert r["D0"] == pytest.approx(d0, rel=1e-10)
        # W1(P_tau, P~_tau) of the start clouds against its closed form: |δ| (a translation)
        # and |1 - s| E|Z| (a radial scaling); both are W1-optimal maps of the common noise
        exact = s.shift if r["perturbation"] == "mean" else abs(1 - s.std) * math.sqrt(2) * math.exp(
            math.lgamma(32.5) - math.lgamma(32))
        assert r["W1_init_exact"] == pytest.approx(exact, rel=1e-10)
        lo, hi = r["delta_W1_ci"]
        assert lo <= r["delta_W1"] <= hi
        assert r["eta_ci"][0] <= r["eta"] <= r["eta_ci"][1]
        if r["field"] == "exact":  # memorisation: every generated image is a data image
            assert r["max_distance_generated_to_data"] < 1e-6
