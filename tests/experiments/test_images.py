"""The digits experiment (jaxsa.experiments.images) on a tiny setting: JSON keys, closed-form D0,
memorisation, schedule invariance of the generated images, and Eq. 77 (η ≤ ∫T Ṡ^tot dt)."""

from __future__ import annotations


import numpy as np
import pytest

from jaxsa.experiments.images import ImagesSettings, load_digits_data, run_images
from tests.helpers.images import check_images_doc


def test_images_tiny_run():
    """One learned and one exact field, few particles (compile-dominated)."""
    from jaxsa.processes.learned import CFMSettings
    from jaxsa.relations.audit import AuditSettings

    s = ImagesSettings(schedules=("cond-ot",), exact=("cond-ot",), n_data=120,
                       cfm=CFMSettings(width=16, depth=2, steps=20, batch=32),
                       audit=AuditSettings(n_particles=64, n_replicates=3, n_times=4, n_curve=16),
                       n_images=2)
    check_images_doc(s, run_images(s))


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
