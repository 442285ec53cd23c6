"""The d-D rows of `jaxsa steps` (issue 15): the pathwise sampler error, the Monte Carlo v2 table
and the thermodynamic grid built from it, against closed forms of an affine flow; a tiny run on
learned Swiss-roll models."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

import jaxsa
from jaxsa.processes.learned import CFMSettings
from jaxsa.studies.steps import StepsSettings, run_steps
from jaxsa.studies.steps_dd import learned_flow, reference_flow, sampler_error

C, D = 0.4, 3  # data N(0, C^2 I_D) under cond-OT (tau = 1): x_t = s(t) z


def _s(t):
    return np.sqrt((1.0 - t) ** 2 * C**2 + t**2)


def _ds(t):
    return (t - (1.0 - t) * C**2) / _s(t)


def _field():
    def v(t, x):
        s = jnp.sqrt((1.0 - t) ** 2 * C**2 + t**2)
        return ((t - (1.0 - t) * C**2) / s**2) * x

    return jaxsa.velocity_field(v, 1.0, (D,))


def test_pathwise_error_of_euler_on_an_affine_flow_is_the_closed_form():
    """Euler multiplies z by prod(1 + h_k s'(t_k)/s(t_k)) =: a_N; the converged flow by s(0) = C.
    The pathwise error is |a_N - C| E|z| (E|z| of a chi distribution with D degrees of freedom),
    and here it equals W1 (the 1-Lipschitz potential |x| attains it)."""
    field = _field()
    grid = jnp.linspace(1.0, 0.0, 6)
    g = np.asarray(grid)
    a = np.prod([1.0 + (g[k + 1] - g[k]) * _ds(g[k]) / _s(g[k]) for k in range(len(g) - 1)])
    truth = abs(a - C) * math.sqrt(2.0) * math.gamma((D + 1) / 2) / math.gamma(D / 2)
    z = jax.random.normal(jax.random.PRNGKey(0), (8192, D))
    ref, floor, ok = reference_flow(field, z)
    assert ok and floor < 1e-5
    np.testing.assert_allclose(np.asarray(ref), C * np.asarray(z), atol=1e-6)
    e, half, lower = (float(v) for v in sampler_error(field, z, ref, grid, "euler"))
    assert truth > 0.01
    assert abs(e - truth) <= 1.5 * half, (e, truth, half)
    assert half < 0.03 * truth
    assert 0.0 <= lower <= truth  # the mean displacement is ~0 here: a weak but valid lower bound


def test_v2_table_and_thermo_grid_against_the_closed_form():
    """v2^2(t) = D s'(t)^2 along the flow; the equal-length grid inverts L(t) = sqrt(D) ∫|s'| dt
    (scipy quad + brentq, no shared code)."""
    flow = learned_flow(_field(), None, jax.random.PRNGKey(1), n_particles=4096, n_times=257)
    t = np.asarray(flow.t_table)
    exact = D * _ds(t) ** 2
    dev = np.abs(np.asarray(flow.v2_sq_table) - exact)
    assert np.all(dev <= 5 * np.asarray(flow.v2_sq_se) + 1e-9), np.max(dev / np.asarray(flow.v2_sq_se))
    n = 8
    grid = np.asarray(jaxsa.step_grid(flow, n, "thermo_length"))
    length = lambda u: integrate.quad(lambda x: abs(_ds(x)), 0.0, u, limit=200)[0]  # noqa: E731
    total = length(1.0)
    ref = [1.0] + [optimize.brentq(lambda u: length(u) - (1 - i / n) * total, 0.0, 1.0)
                   for i in range(1, n)] + [0.0]
    # the table's Monte Carlo error (relative ~1/sqrt(n) in v2^2) moves the interior times
    np.testing.assert_allclose(grid, ref, atol=0.01)


@pytest.fixture(scope="module")
def tiny_dd(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cfm")
    s = StepsSettings(nfe=(4, 16), data=("swiss-roll",), schedules=("cosine", "ot"),
                      rules=("uniform", "thermo_length", "edm"), optimise_nfe=(), n_particles=512,
                      v2_particles=128, cfm=CFMSettings(width=32, depth=2, steps=60, batch=64, time_features=0),
                      cache_dir=str(cache))
    return s, run_steps(s)


def test_tiny_learned_rows(tiny_dd):
    s, out = tiny_dd
    recs = out["records"]
    # OT-CFM has no (m_t, sigma_t): the noise-level rules do not run there
    assert {(r["schedule"], r["rule"]) for r in recs} == {
        ("cosine", "uniform"), ("cosine", "thermo_length"), ("cosine", "edm"),
        ("ot", "uniform"), ("ot", "thermo_length")}
    for r in recs:
        assert r["data"] == "swiss-roll" and r["field"] == "learned" and r["floor_ode_ok"]
        assert 0 <= r["W1_lower"] <= r["W1"] and 0 < r["W1_err"] < r["W1"]
        assert r["n_particles"] == 512 and len(r["grid"]) == r["n_steps"] + 1
    for sched in ("cosine", "ot"):  # Heun converges: more steps, smaller pathwise error
        by = {r["nfe"]: r["W1"] for r in recs if r["schedule"] == sched and r["rule"] == "uniform"}
        assert by[16] < 0.5 * by[4], by
    for r in recs:  # every grid ends at the data; the noise rule's last step is t_min -> 0
        assert r["grid"][0] == 1.0 and r["grid"][-1] == 0.0
        if r["rule"] == "edm":
            assert r["grid"][-2] == pytest.approx(s.t_min)
    info = out["learned"]["swiss-roll"]
    assert set(info["cfm"]) == {"cosine", "ot"} and info["data_std"] == pytest.approx(1.0, rel=1e-6)
    assert all(0 < v < 0.1 for v in info["W1_cutoff_t_min"].values())
    assert {w["schedule"] for w in out["winners"]} == {"cosine", "ot"}
