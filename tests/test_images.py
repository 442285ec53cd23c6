"""The digits experiment (jaxsa.experiments.images) on a tiny setting: JSON keys, closed-form D0,
memorisation, schedule invariance of the generated images, and Eq. 77 (η ≤ ∫T Ṡ^tot dt)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from jaxsa.experiments.images import ImagesSettings, load_digits_data, run_images

KEYS = {"eta", "entropy_bound", "entropy_bound_ci95", "c2", "D0", "W1_0", "W1_tau",
        "W1_tau_exact", "W1_noise_floor", "n_samples", "n_entropy", "eq77_holds",
        "delta_W1_se", "delta_W1_ci95", "eta_ci95", "eta_resolved"}


def _check_doc(s, doc):
    json.dumps(doc)  # JSON-ready
    recs = doc["records"]
    assert {(r["schedule"], r["perturbation"]) for r in recs} == {
        (a, b) for a in s.schedules for b in ("mean", "variance")}
    n_data = len(load_digits_data(s.n_data))  # s.n_data images, or all 1,797 (None)
    for r in recs:
        assert KEYS <= set(r)
        # the sizes of the settings under test (not constants of one of them)
        assert r["n_samples"] == s.n_samples and r["dim"] == 64 and r["n_data"] == n_data
        assert r["n_entropy"] == s.n_entropy * s.n_time and r["n_time"] == s.n_time
        assert r["ode_success"]
        # D0 closed forms: exp(|δ|²) - 1 and (1/(s sqrt(2 - s²)))^d - 1
        d0 = (math.expm1(s.shift**2) if r["perturbation"] == "mean"
              else (1 / (s.std * math.sqrt(2 - s.std**2))) ** 64 - 1)
        assert r["D0"] == pytest.approx(d0, rel=1e-10)
        # Eq. 77 in d dimensions: |ΔW1| ≤ sqrt(τ D0 ∫T Ṡ^tot dt)
        assert abs(r["delta_W1"]) <= math.sqrt(s.tau * r["D0"] * r["entropy_bound"])
        assert r["eq77_holds"] and r["eta"] <= r["entropy_bound"]
        # memorisation: every generated image is a data image
        assert r["max_distance_generated_to_data"] < 1e-8
        # the ott-jax W1 of the start clouds vs its common-random-number closed form is close;
        # W1 at t=0 cannot exceed the CRN coupling cost by more than the solver tolerance
        assert r["W1_0"] <= r["W1_0_crn"] * 1.02 + 1e-9
        # bootstrap noise of ΔW1: positive, and the intervals are centred on the estimates
        assert r["delta_W1_se"] > 0
        lo, hi = r["delta_W1_ci95"]
        assert lo < r["delta_W1"] < hi and hi - lo == pytest.approx(2 * 1.96 * r["delta_W1_se"])
        assert r["eta_ci95"][0] <= r["eta"] <= r["eta_ci95"][1]
        assert r["eta_resolved"] == (abs(r["delta_W1"]) > 1.96 * r["delta_W1_se"])


def test_images_tiny_run():
    """Default run: one schedule, few samples (compile-dominated, ~30 s of CPU)."""
    s = ImagesSettings(schedules=("cond-ot",), n_samples=16, n_entropy=8, n_time=2, n_data=120)
    _check_doc(s, run_images(s))


@pytest.mark.slow
def test_images_default_run():
    """The default experiment (both schedules, all 1,797 images): a few minutes on 2 cores."""
    s = ImagesSettings()
    doc = run_images(s)
    _check_doc(s, doc)
    # same flow map for both schedules (it depends on sigma/m only): same generated images
    imgs = doc["images"]
    for k in ("none", "mean", "variance"):
        np.testing.assert_allclose(imgs["cond-ot"][k], imgs["cosine"][k], atol=1e-6)


def test_images_bad_settings():
    with pytest.raises(ValueError, match="n_samples"):
        run_images(ImagesSettings(n_samples=1))
    with pytest.raises(ValueError, match="std"):
        run_images(ImagesSettings(std=1.5))
    with pytest.raises(ValueError, match="schedule"):
        run_images(ImagesSettings(schedules=("vp",)))
    with pytest.raises(ValueError, match="n_bootstrap"):
        run_images(ImagesSettings(n_bootstrap=1))


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
