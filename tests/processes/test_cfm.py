"""OT conditional flow matching (SPEC §5) against the exact 1D OT schedule, its cache, and
Fig. 3 end to end at a tiny size."""

from __future__ import annotations

import dataclasses
import json
import os

from tests.helpers import reference_1d as R
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
    from jaxsa.relations.audit import AuditSettings

    s = Fig3Settings(n_data=200, shift=0.5, schedules=("cond-ot", "ot"), exact=("cosine",),
                     cfm=CFMSettings(width=16, depth=2, steps=20, batch=32),
                     audit=AuditSettings(n_particles=128, n_replicates=3, n_times=4, n_curve=32),
                     n_plot=50, cache_dir=str(tmp_path / "cache"))
    out = reproduce_fig3(str(tmp_path / "out"), fig3_settings=s)
    doc = json.loads((tmp_path / "out" / "fig3.json").read_text())
    assert os.path.getsize(tmp_path / "out" / "fig3.png") > 10_000
    recs = {(r["schedule"], r["field"]): r for r in doc["records"]}
    assert set(recs) == {("cond-ot", "learned"), ("ot", "learned"), ("cosine", "exact")}
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
        # the start is a translation of the prior's noise (common random numbers): W1 at τ is
        # |δ| exactly, the closed form too
        assert r["crn"] and r["W1_init"] == pytest.approx(s.shift, rel=1e-9)
        assert r["W1_init_exact"] == pytest.approx(s.shift, rel=1e-12)
        for k in ("eta", "c1", "c2", "entropy_bound", "model_error"):
            assert np.isfinite(r[k]), (k, r)
            lo, hi = r[f"{k}_ci"] if f"{k}_ci" in r else (r[k], r[k])
            assert lo <= r[k] <= hi
        assert r["n_particles"] == 128 and r["n_replicates"] == 3
        lo, hi = r["delta_W1_ci"]
        assert r["eta_resolved"] == (not (lo <= 0 <= hi) and r["eta_rel_halfwidth"] <= 0.3)
        assert ("why_unresolved" in r) == (not r["eta_resolved"])
    assert out["provenance"]["cfm"]["ot"]["loaded"] is False


def test_fig3_bad_input():
    from jaxsa.experiments.fig3 import Fig3Settings

    with pytest.raises(ValueError, match="n_data"):
        Fig3Settings(n_data=5)
    with pytest.raises(ValueError, match="shift"):
        Fig3Settings(shift=0.0)
    with pytest.raises(ValueError, match="schedules"):
        Fig3Settings(schedules=("ddpm",))


# --- conditional flow matching on the schedule paths (cosine, cond-OT, VP) -----------------
# For Gaussian data q = N(mu, S) (S diagonal) and x1 ~ N(0, I) independent, x_t = m x0 + sigma x1
# is Gaussian jointly with its velocity x'_t = m' x0 + sigma' x1, so the exact field is affine:
# u(t, x) = m' mu + (m m' S + sigma sigma' I)(m^2 S + sigma^2 I)^{-1} (x - m mu).
_MU, _SD = np.array([1.0, -0.5]), np.array([0.5, 1.5])


def _coeffs(path, t, tau=1.0):
    """(m, sigma, m', sigma sigma') by hand (cosine, cond-OT) or from jaxsa's VPLinear."""
    if path == "cosine":
        a = 0.5 * np.pi / tau
        return np.cos(a * t), np.sin(a * t), -a * np.sin(a * t), a * np.sin(a * t) * np.cos(a * t)
    if path == "cond-ot":
        return 1 - t / tau, t / tau, -1 / tau, t / tau**2
    v = jaxsa.VPLinear(tau=tau).values(t)
    return float(v.m), float(v.sigma), float(v.dm), float(v.sigma_dsigma)


def _exact_gaussian_field(path, t, x, mu=_MU, var=_SD**2, coeff_path=None):
    """The exact field of `path`'s marginals (or, with `coeff_path`, the minimiser of the
    regression of `coeff_path`'s conditional velocity on `path`'s x_t: a wrong target)."""
    m, sg, _, _ = _coeffs(path, t)
    _, _, dm, ssd = _coeffs(coeff_path or path, t)
    ds = ssd / _coeffs(coeff_path or path, t)[1]
    return dm * mu + (m * dm * var + sg * ds) / (m**2 * var + sg**2) * (x - m * mu)


def _rel_l2(path, t, fn, n=4000):
    """sqrt(E|fn - u|^2 / E|u|^2) on n samples of the path's P_t (u: the exact field)."""
    m, sg, _, _ = _coeffs(path, t)
    z = np.asarray(jax.random.normal(jax.random.PRNGKey(123), (2, n, 2)))
    x = m * (_MU + _SD * z[0]) + sg * z[1]
    u = _exact_gaussian_field(path, t, x)
    return float(np.sqrt(np.mean(np.sum((fn(x) - u) ** 2, -1)) / np.mean(np.sum(u**2, -1))))


def test_exact_gaussian_field_is_the_diffusion_path_velocity():
    # the closed form above and the package's DiffusionPath of the same schedule (isotropic
    # data, so that DiffusionPath applies) agree: the reference uses jaxsa's conventions
    from jaxsa.processes.learned import path_schedule

    x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (50, 2)))
    for path in ("cosine", "cond-ot", "vp"):
        dp = jaxsa.DiffusionPath(path_schedule(path, 1.0),
                                 jaxsa.GaussianMixture(np.ones(1), _MU[None], np.array([0.7])))
        for t in (0.1, 0.5, 0.9):
            np.testing.assert_allclose(np.asarray(dp.velocity(t, x)),
                                       _exact_gaussian_field(path, t, x, var=0.49), rtol=1e-10, atol=1e-12)


def test_schedule_paths_learn_the_exact_gaussian_velocity():
    # ~7 s: 64 x 2 SiLU network, 3,000 steps of batch 512 per path (no OT solve). Measured
    # errors at t/tau = 0.25, 0.5, 0.75: cosine .049 .030 .021, cond-OT .030 .031 .029, VP .034
    # .030 .060 (bound 0.12). The exact field of another path is >= 0.64 away at one of these
    # times, and so is the field learned from a wrong target: mutating train_cfm's target to
    # the OT target (x1 - x0)/tau fails here (cosine: .87 .10 .55; note the .10 at t = tau/2,
    # hence three times), and so does sigma sigma' in place of sigma' (cosine: .57 .22 .04).
    base = CFMSettings(width=64, depth=2, steps=3000, batch=512, learning_rate=5e-3, warmup=20)
    models = jaxsa.processes.learned.train_cfm_family(
        lambda k, n: _MU[None, :] + _SD[None, :] * jax.random.normal(k, (n, 2)),
        lambda k, n: jax.random.normal(k, (n, 2)),
        2, base, paths=("cosine", "cond-ot", "vp"), data_id="gauss-2d")
    times = (0.25, 0.5, 0.75)
    for path, (model, info) in models.items():
        assert not info["loaded"] and np.isfinite(info["loss"])
        errs = [_rel_l2(path, t, lambda x: np.asarray(model.velocity(t, x))) for t in times]  # noqa: B023
        assert max(errs) < 0.12, (path, errs)
        for wrong in {"cosine", "cond-ot", "vp"} - {path}:  # the test separates the paths
            far = max(_rel_l2(path, t, lambda x: _exact_gaussian_field(path, t, x, coeff_path=wrong))  # noqa: B023
                      for t in times)
            assert far > 0.45, (path, wrong, far)
    ot_on_cosine = max(_rel_l2("cosine", t, lambda x: _exact_gaussian_field("cosine", t, x, coeff_path="cond-ot"))  # noqa: B023
                       for t in times)
    assert ot_on_cosine > 0.8  # cond-OT's coefficients are the OT target (x1 - x0)/tau


def test_cfm_path_digest_and_checkpoints_never_cross(tmp_path):
    import hashlib

    from jaxsa.processes.learned import _digest_blob

    # the default "ot" blob is the one from before `path` existed (no "path" key), so old
    # checkpoints keep their names; every other path has its own digest
    for s in (CFMSettings(), SMALL):
        blob = json.loads(_digest_blob(s, "d", 2, "float32"))
        old = {k: v for k, v in dataclasses.asdict(s).items() if k != "path"}
        assert blob["settings"] == old
        old_blob = json.dumps({"settings": old, "data": "d", "dim": 2, "dtype": "float32",
                               "format": blob["format"]}, sort_keys=True)
        assert checkpoint_digest(s, "d", 2, "float32") == hashlib.sha256(old_blob.encode()).hexdigest()[:20]
    digests = {p: checkpoint_digest(CFMSettings(path=p), "d", 2, "float32") for p in ("ot", "cond-ot", "cosine", "vp")}
    assert len(set(digests.values())) == 4
    assert json.loads(_digest_blob(CFMSettings(path="vp"), "d", 2, "float32"))["settings"]["path"] == "vp"
    # a checkpoint of one path is never loaded for another: separate files, and a file of the
    # cosine path put under the VP name is rejected (its stored configuration differs)
    tiny = CFMSettings(width=8, depth=1, steps=3, batch=16)
    sd, sp = (lambda k, n: jax.random.normal(k, (n, 2)) + 1.0), (lambda k, n: jax.random.normal(k, (n, 2)))
    calls = []
    fam = jaxsa.processes.learned.train_cfm_family(sd, sp, 2, tiny, paths=("cosine", "ot"), data_id="d",
                                                   cache_dir=str(tmp_path), progress=lambda *a: calls.append(a[:2]))
    assert calls == [("cosine", 3), ("ot", 3)] and list(fam) == ["cosine", "ot"]
    (_, i_cos), (_, i_ot) = fam["cosine"], fam["ot"]
    assert i_ot["digest"] == checkpoint_digest(tiny, "d", 2, "float32") != i_cos["digest"]
    _, i_vp = train_cfm(sd, sp, 2, dataclasses.replace(tiny, path="vp"), data_id="d", cache_dir=str(tmp_path))
    assert not i_vp["loaded"] and not i_vp["stale_checkpoint_replaced"] and i_vp["path"] != i_cos["path"]
    os.replace(i_cos["path"], i_vp["path"])
    _, i_vp2 = train_cfm(sd, sp, 2, dataclasses.replace(tiny, path="vp"), data_id="d", cache_dir=str(tmp_path))
    assert not i_vp2["loaded"] and i_vp2["stale_checkpoint_replaced"]
    fam2 = jaxsa.processes.learned.train_cfm_family(sd, sp, 2, tiny, paths=("vp", "ot", "cosine"), data_id="d",
                                                    cache_dir=str(tmp_path))
    assert [fam2[p][1]["loaded"] for p in ("vp", "ot", "cosine")] == [True, True, False]


def test_cfm_bad_path():
    with pytest.raises(ValueError, match="`path` must be one of"):
        CFMSettings(path="diffusion")
    from jaxsa.processes.learned import train_cfm_family

    sd, sp = _samplers()
    for bad in ((), ("cosine", "cosine"), ("ddpm",)):
        with pytest.raises(ValueError, match="`paths`"):
            train_cfm_family(sd, sp, 1, CFMSettings(steps=1), paths=bad, data_id="x")
    with pytest.raises(ValueError, match="settings"):
        train_cfm_family(sd, sp, 1, {"path": "vp"}, data_id="x")
