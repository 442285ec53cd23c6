"""Numerical convergence of the report: refinement of every resolution, the order of the
time derivative of W_1, and the kink-corrected quadrature (jaxsa.relations.abs_quadrature)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tests.helpers import PATH_NAMES, PERT_NAMES, stack_starts, unbatch
from scipy import integrate, stats

import jaxsa
from jaxsa.relations import abs_quadrature as _abs_quadrature

abs_quadrature = jax.jit(_abs_quadrature)


def _refined(paper, factor):
    """The 12 paper cases (quantile method) with every resolution of Settings() refined by
    ``factor`` (``factor = 1``: the defaults)."""
    _, perts, paths = paper
    st = jaxsa.Settings().refined(factor) if factor > 1 else jaxsa.Settings()
    assert st.n_quantiles == factor * jaxsa.Settings().n_quantiles
    starts = stack_starts(perts, PERT_NAMES, st)
    out = {}
    for p in PATH_NAMES:
        rep = jaxsa.speed_accuracy_from_start(paths[p], starts, st)
        for i, k in enumerate(PERT_NAMES):
            out[(p, k)] = unbatch(rep, i)
    return out


@pytest.fixture(scope="module")
def refined_reports(paper):
    return _refined(paper, 2)


# docs/method.md and benchmarks/RESULTS.md: doubling every resolution of the quantile method
# (1024 -> 2048 nodes) changes eta, c1, c2 by <= 1.4e-5 relative (measured 1.37e-5: eta and
# c1 of the mixture start) and c2, D0 by < 1e-11 (measured 1.4e-12, 1.6e-12); 2048 -> 4096
# nodes changes eta, c1, c2 by <= 3.5e-6 (measured 3.45e-6: c1, cosine, mixture).
STATED = {"eta": 1.4e-5, "c1": 1.4e-5, "c2": 1e-11, "D0": 1e-11}


@pytest.mark.parametrize("path", PATH_NAMES)
@pytest.mark.parametrize("pert", PERT_NAMES)
def test_refinement_changes_little(path, pert, paper_reports, refined_reports):
    coarse, fine = paper_reports[(path, pert)], refined_reports[(path, pert)]
    for name in ("eta", "c1", "c2", "D0", "W1_q_p", "W1_init", "path_length"):
        a, b = float(getattr(coarse, name)), float(getattr(fine, name))
        assert abs(a - b) <= STATED.get(name, 1e-4) * abs(b), (name, a, b)
    assert fine.violations(1e-8) == {}
    assert float(fine.chi2_residual) < 1e-7


@pytest.mark.slow  # 2048 and 4096 nodes on the 12 paper cases: ~40 s on 2 cores
def test_refinement_at_2048_nodes_changes_less(paper, refined_reports):
    finer = _refined(paper, 4)
    for case, fine in refined_reports.items():
        for name in ("eta", "c1", "c2"):
            a, b = float(getattr(fine, name)), float(getattr(finer[case], name))
            assert abs(a - b) <= 3.5e-6 * abs(b), (case, name, a, b)


@pytest.mark.parametrize("path", ["cosine", "cond-ot"])
@pytest.mark.parametrize("pert", PERT_NAMES)
def test_dW1_dt_matches_central_differences_at_second_order(path, pert, paper_reports):
    """dW1_dt is the exact time derivative of the W_1 series: central differences of W1_t
    with steps k dt (dt = tau/150) approach it as (k dt)^2."""
    r = paper_reports[(path, pert)]
    W1, dW1 = np.asarray(r.W1_t), np.asarray(r.dW1_dt)
    dt = float(r.t[1] - r.t[0])
    idx = np.arange(8, len(W1) - 8)
    cd = {k: (W1[idx + k] - W1[idx - k]) / (2 * k * dt) for k in (1, 2, 4, 8)}
    errs = np.array([np.max(np.abs(cd[k] - dW1[idx])) for k in (1, 2, 4, 8)])
    ratios = errs[1:] / errs[:-1]
    assert np.all((ratios > 3.5) & (ratios < 4.5)), (errs, ratios)
    # Richardson extrapolation removes the dt^2 term: the remainder is O(dt^4)
    scale = np.max(np.abs(dW1))
    rich1 = np.max(np.abs((4 * cd[1] - cd[2]) / 3 - dW1[idx]))
    rich2 = np.max(np.abs((4 * cd[2] - cd[4]) / 3 - dW1[idx]))
    assert rich1 < 1e-5 * scale
    assert rich2 / rich1 > 10


def _kinked(t):
    """d(z, t) with a kink of |d| at the fixed, non-node position z = 0.7 (as in the report,
    where the crossing of the two flows is time-invariant) and its time derivative."""
    d = lambda z: (z - 0.7) * (1.2 + 0.3 * z**2 / (1 + z**2) + t * (0.5 + 0.1 * z))  # noqa: E731
    dd = lambda z: (z - 0.7) * (0.5 + 0.1 * z)  # noqa: E731
    return d, dd


def _abs_rule(d, dd, z, w):
    """`abs_quadrature` of the difference ``d`` with its time derivative ``dd`` at the nodes."""
    d = jnp.asarray(d)
    return abs_quadrature(d, jnp.asarray(dd), jnp.sign(d), jnp.asarray(z), jnp.asarray(w))


def test_abs_quadrature_is_third_order():
    t = 0.3
    d, dd = _kinked(t)

    def quad(f):
        kw = dict(epsabs=1e-15, epsrel=1e-13, limit=200)
        return integrate.quad(f, -12, 0.7, **kw)[0] + integrate.quad(f, 0.7, 12, **kw)[0]

    ref = quad(lambda z: abs(d(z)) * stats.norm.pdf(z))
    ref_rate = quad(lambda z: np.sign(d(z)) * dd(z) * stats.norm.pdf(z))
    errs, rate_errs, plain = [], [], []
    for n in (129, 257, 513):
        z, w = jaxsa.quantile_nodes(n, 9.0)
        val, rate = _abs_rule(d(z), dd(z), z, w)
        errs.append(abs(float(val) - ref))
        rate_errs.append(abs(float(rate) - ref_rate))
        plain.append(abs(float(np.sum(w * np.abs(d(z)))) - ref))
    errs, rate_errs, plain = map(np.array, (errs, rate_errs, plain))
    # halving h divides the error by ~8 (third order) for the value and its time derivative
    assert np.all(errs[:-1] / errs[1:] > 6), errs
    assert np.all(rate_errs[:-1] / rate_errs[1:] > 6), rate_errs
    # and beats the plain trapezoid rule, which is second order across the kink
    assert np.all(errs < plain)
    # the derivative is the exact derivative of the rule: a finite difference in t agrees
    h = 1e-6
    z, w = jaxsa.quantile_nodes(257, 9.0)
    vals = []
    for tt in (t - h, t + h):
        dp, _ = _kinked(tt)
        vals.append(float(_abs_rule(dp(z), np.zeros(z.shape), z, w)[0]))
    _, rate = _abs_rule(d(z), dd(z), z, w)
    assert (vals[1] - vals[0]) / (2 * h) == pytest.approx(float(rate), rel=1e-8)


def test_quantile_nodes():
    z, w = jaxsa.quantile_nodes(101, 8.5)
    assert z[0] == -8.5 and z[-1] == 8.5 and len(z) == 101
    assert float(np.sum(w)) == pytest.approx(1 - 2 * stats.norm.cdf(-8.5), abs=1e-14)
    # spectrally accurate for smooth integrands: E[Z^4] = 3
    assert float(np.sum(w * z**4)) == pytest.approx(3.0, rel=1e-12)


def test_documented_defaults():
    """The defaults the README and docs/method.md state: CDF method, ``rtol = 1e-6``, up to
    ``max_refine = 2`` doublings, time panels from ``0.02 ×`` the narrowest data scale; quantile
    levels on ``[-8.5, 8.5]`` (1024 nodes); Dopri8 with a PID controller at rtol = atol = 1e-10;
    ΔW₁ also allowed ``1e-3 × rtol × W₁`` absolutely."""
    from jaxsa.solvers.flow import ODESettings
    from jaxsa.relations import tolerance_of

    st = jaxsa.Settings()
    assert (st.method, st.rtol, st.max_refine, st.rho_lo) == ("cdf", 1e-6, 2, 0.02)
    assert (st.z_max, st.n_quantiles) == (8.5, 1024)
    z, _ = jaxsa.quantile_nodes(st.n_quantiles, st.z_max)
    assert (z[0], z[-1]) == (-8.5, 8.5)
    assert st.ode == ODESettings() and (st.ode.solver, st.ode.rtol, st.ode.atol) == ("Dopri8", 1e-10, 1e-10)
    assert st.ode.fixed_steps == 0  # adaptive
    vals = {k: 1.0 for k in jaxsa.Report.SCALARS} | {"delta_W1": 0.0, "W1_q_p": 2.0, "W1_init": 2.0}
    assert float(tolerance_of(vals, 1e-6)["delta_W1"]) == pytest.approx(1e-3 * 1e-6 * 2.0, rel=1e-12)
