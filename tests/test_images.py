"""The digits experiment (jaxsa.experiments.images) on a tiny setting: JSON keys, closed-form D0,
memorisation, schedule invariance of the generated images, and Eq. 77 (η ≤ ∫T Ṡ^tot dt)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from jaxsa.experiments.images import ImagesSettings, load_digits_data, run_images

KEYS = {"eta", "eta_ci", "c1", "c1_ci", "c2", "entropy_bound", "entropy_bound_ci", "D0",
        "W1_q_p", "W1_init", "W1_init_exact", "W1_noise_floor", "model_error", "model_error_ci",
        "eq77_holds", "delta_W1", "delta_W1_ci", "eta_resolved", "n_particles", "n_replicates"}


def _check_doc(s, doc):
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


def test_images_tiny_run():
    """One learned and one exact field, few particles (compile-dominated)."""
    from jaxsa.processes.learned import CFMSettings
    from jaxsa.relations.audit import AuditSettings

    s = ImagesSettings(schedules=("cond-ot",), exact=("cond-ot",), n_data=120,
                       cfm=CFMSettings(width=16, depth=2, steps=20, batch=32),
                       audit=AuditSettings(n_particles=64, n_replicates=3, n_times=4, n_curve=16),
                       n_images=2)
    _check_doc(s, run_images(s))


def test_images_bad_settings():
    with pytest.raises(ValueError, match="std"):
        run_images(ImagesSettings(std=1.5))
    with pytest.raises(ValueError, match="schedule"):
        run_images(ImagesSettings(schedules=("ddpm",)))
    with pytest.raises(ValueError, match="shift"):
        run_images(ImagesSettings(shift=0.0))


def test_digits_are_1797_images_of_64_pixels_scaled_to_minus_one_one():
    """README: the 1,797 8×8 digits of scikit-learn, 64 dimensions, scaled to [-1, 1]: every
    image is sklearn's 0–16 grey levels mapped affinely, 0 to -1 and 16 to +1."""
    from sklearn.datasets import load_digits

    x = load_digits_data()
    raw = load_digits().images.reshape(-1, 64)  # the 8×8 images, flattened
    assert x.shape == (1797, 64) and x.dtype == np.float64
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.round((x + 1.0) * 8.0), raw)
    assert load_digits_data(100).shape == (100, 64)
