"""OT conditional flow matching (SPEC §5) against the exact 1D OT schedule, its cache, and
Fig. 3 end to end at a tiny size."""

from __future__ import annotations

import dataclasses
import json
import os

import _reference_1d as R
import jax
import numpy as np
import pytest

import jaxsa
from jaxsa.processes.learned import CFMSettings, checkpoint_digest, compare_1d_ot, train_cfm


def _samplers():
    data = jaxsa.paper_data()
    return (lambda k, n: data.sample(k, (n,))[:, None]), (lambda k, n: jax.random.normal(k, (n, 1)))


def _train(settings, cache_dir=None):
    sd, sp = _samplers()
    return train_cfm(sd, sp, 1, settings, data_id="paper-1d:N(0,1)", cache_dir=cache_dir)


# The small default training (1,000 steps, batch 128, 64 units, SiLU with time features,
# float32, seed 0; ~13 s of training on the 2-core CPU): benchmarks/RESULTS.md states 12.7%
# velocity L2 error, c2 1.3%, eta 2.6% (measured again: 0.1268, 1.33%, 2.61%). The training is
# seeded and deterministic on the CPU, so the test asserts these figures rounded up by one unit
# of their last printed digit. The slow test trains 3x longer at batch 256.
SMALL = CFMSettings(width=64, depth=3, steps=1000, batch=128, learning_rate=5e-3, warmup=50)
LONG = CFMSettings(width=64, depth=3, steps=3000, batch=256)


def test_cfm_1d_matches_exact_ot_and_is_cached(tmp_path):
    model, info = _train(SMALL, str(tmp_path))
    assert not info["loaded"] and os.path.exists(info["path"])
    ot_path = jaxsa.OTPath(jaxsa.paper_data(), jaxsa.paper_prior(), 1.0)
    r = compare_1d_ot(model, ot_path, n_levels=1000, n_times=16, ode_steps=40)
    # "exact" c2 = W2(q, N(0,1))^2 / tau on 1,000 midpoint levels: 0.1468 (RESULTS.md), 0.34%
    # below the reference's adaptive quadrature (0.14729; the levels miss the tails); and the
    # exact OT eta of the start N(1, 1) against the reference's (1000 levels: 2e-5 low)
    d = R.Mixture(np.array([0.5, 0.5]), np.sqrt(0.35) * np.array([1.0, -1.0]), np.array([0.3, 0.3]))
    prior = R.Mixture.gaussian(0.0, 1.0)
    w2 = R.w2_sq(d, prior)
    assert r["c2_exact"] == pytest.approx(0.1468, abs=5e-5)
    assert r["c2_exact"] == pytest.approx(w2, rel=4e-3) and r["c2_exact"] < w2
    assert r["eta_exact"] == pytest.approx(R.eta(d, prior, R.Mixture.gaussian(1.0, 1.0), 1.0), rel=1e-4)
    # measured 0.1268, 1.33 %, 2.61 % here; float32 training on another CPU (other SIMD
    # widths, other reduction orders) drifts a little, so the bounds leave ~10-50 % headroom
    assert r["velocity_rel_l2"] < 0.14, r
    assert r["c2_rel_error"] < 0.02, r
    assert r["eta_rel_error"] < 0.04, r
    # second call: loaded from the checkpoint, identical field
    model2, info2 = _train(SMALL, str(tmp_path))
    assert info2["loaded"] and info2["digest"] == info["digest"]
    x = np.linspace(-2, 2, 7)[:, None]
    np.testing.assert_array_equal(np.asarray(model.velocity(0.3, x)), np.asarray(model2.velocity(0.3, x)))
    # a different configuration or data set gets a different digest
    assert checkpoint_digest(dataclasses.replace(SMALL, seed=1), "paper-1d:N(0,1)", 1, "float32") != info["digest"]
    assert checkpoint_digest(SMALL, "other", 1, "float32") != info["digest"]
    assert checkpoint_digest(SMALL, "paper-1d:N(0,1)", 1, "float32") == info["digest"]
    # a file under this name written with another configuration (or the old bare-params
    # format) is not loaded: it is retrained and replaced
    import flax.serialization

    with open(info["path"], "wb") as f:
        f.write(flax.serialization.to_bytes(model.params))  # format 1: no configuration stored
    small_short = dataclasses.replace(SMALL, steps=5)
    path5 = os.path.join(str(tmp_path), f"cfm-{checkpoint_digest(small_short, 'paper-1d:N(0,1)', 1, 'float32')}.msgpack")
    os.replace(info["path"], path5)
    _, info3 = _train(small_short, str(tmp_path))
    assert not info3["loaded"] and info3["stale_checkpoint_replaced"], info3
    _, info4 = _train(small_short, str(tmp_path))
    assert info4["loaded"]


def test_minibatch_plan_pairs_follow_the_plan():
    # identical point sets at small epsilon: the OT plan is the identity, so every drawn pair
    # is (x, x); the pairs are drawn from the plan, so x0 is (close to) uniform over the batch
    from jaxsa.processes.learned import ot_coupled_pairs

    x = jax.random.normal(jax.random.PRNGKey(0), (64, 2))
    perm = jax.random.permutation(jax.random.PRNGKey(1), 64)
    a, b = ot_coupled_pairs(jax.random.PRNGKey(2), x, x[perm], 1e-3, 200)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    assert len(np.unique(np.asarray(a)[:, 0])) > 30


@pytest.mark.slow
def test_cfm_1d_long_training_tighter():
    model, _ = _train(LONG)
    ot_path = jaxsa.OTPath(jaxsa.paper_data(), jaxsa.paper_prior(), 1.0)
    r = compare_1d_ot(model, ot_path)
    assert r["velocity_rel_l2"] < 0.12, r
    assert r["c2_rel_error"] < 0.05, r
    assert r["eta_rel_error"] < 0.10, r


def test_cfm_bad_input():
    with pytest.raises(ValueError, match="steps"):
        CFMSettings(steps=0)
    with pytest.raises(ValueError, match="ot_epsilon"):
        CFMSettings(ot_epsilon=-1.0)
    with pytest.raises(ValueError, match="activation"):
        CFMSettings(activation="relu6")
    with pytest.raises(ValueError, match="train_dtype"):
        CFMSettings(train_dtype="float16")
    sd, sp = _samplers()
    with pytest.raises(ValueError, match="samplers must return"):
        train_cfm(sd, sp, 2, CFMSettings(steps=1), data_id="x")
    with pytest.raises(ValueError, match="settings"):
        train_cfm(sd, sp, 1, {"steps": 1}, data_id="x")


def test_fig3_tiny(tmp_path):
    from jaxsa.cli import reproduce_fig3
    from jaxsa.experiments.fig3 import Fig3Settings

    s = Fig3Settings(n_data=200, n_particles=100, n_entropy=16, n_time=4, rk4_steps=12, n_bootstrap=3,
                     cfm=CFMSettings(width=16, depth=2, steps=20, batch=32),
                     cache_dir=str(tmp_path / "cache"))
    out = reproduce_fig3(str(tmp_path / "out"), fig3_settings=s)
    doc = json.loads((tmp_path / "out" / "fig3.json").read_text())
    assert os.path.getsize(tmp_path / "out" / "fig3.png") > 10_000
    recs = {r["schedule"]: r for r in doc["records"]}
    assert set(recs) == {"cosine", "cond-ot", "ot"}
    # D0 = chi2(N(delta, I) || N(0, I)) for the shift |delta| = 0.5 along the diagonal, by 2D
    # quadrature of the densities (RESULTS.md: e^0.25 - 1 = 0.284); W1(P_tau, P~_tau) = |delta|
    from scipy import integrate, stats

    dl = s.shift / np.sqrt(2.0)
    ratio = lambda y, x: (stats.norm.pdf(x, dl) * stats.norm.pdf(y, dl)) ** 2 / (  # noqa: E731
        stats.norm.pdf(x) * stats.norm.pdf(y))
    d0 = integrate.dblquad(ratio, -12, 12, -12, 12, epsabs=1e-13, epsrel=1e-12)[0] - 1.0
    assert s.shift == 0.5 and d0 == pytest.approx(0.284, abs=5e-4)
    for r in recs.values():
        assert r["D0"] == pytest.approx(d0, rel=1e-10)
        assert r["W1_tau"] == s.shift
        for k in ("eta", "c1", "c2", "entropy_bound"):  # smoke check only
            assert np.isfinite(r[k]) and r[k] >= 0, (k, r)
        # the noise measure of eta: a positive bootstrap SE, an interval around dW and eta
        assert r["delta_W1_se"] > 0 and r["n_bootstrap"] == s.n_bootstrap
        lo, hi = r["delta_W1_ci95"]
        assert lo < r["delta_W1"] < hi
        elo, ehi = r["eta_ci95"]
        assert elo <= r["eta"] <= ehi
        assert r["eta_resolved"] == (lo > 0 or hi < 0)
        L, U = r["W1_0_bracket"]
        assert L <= r["W1_0"] <= U
    # exact velocities (cosine, cond-OT): Eq. 77 holds with the Monte-Carlo bound; the tiny OT
    # network (20 steps) is untrained, so no inequality is asserted for it
    for name in ("cosine", "cond-ot"):
        assert recs[name]["eq77_holds"] and recs[name]["eta"] <= recs[name]["c2"], recs[name]
    assert out["provenance"]["cfm"]["loaded"] is False


def test_fig3_bad_input():
    from jaxsa.experiments.fig3 import Fig3Settings

    with pytest.raises(ValueError, match="n_particles"):
        Fig3Settings(n_data=100, n_particles=200)
    with pytest.raises(ValueError, match="shift"):
        Fig3Settings(shift=0.0)
