"""Grid Fokker–Planck and transport solvers: closed forms, conservation, positivity, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsa
from jaxsa.solvers.fokker_planck import Grid, schedule_fokker_planck, solve_fokker_planck
from jaxsa.solvers.transport import solve_transport


@pytest.fixture(autouse=True)
def x64():
    with jaxsa.float64():
        yield


def _ou_exact(x, t, k=1.0, T=0.5, m0=1.0, s0=0.5):
    m = m0 * np.exp(-k * t)
    v = s0**2 * np.exp(-2 * k * t) + T / k * (1 - np.exp(-2 * k * t))
    return np.exp(-0.5 * (x - m) ** 2 / v) / np.sqrt(2 * np.pi * v)


def test_ou_1d_closed_form_mass_positivity_and_order():
    errs = []
    for n in (64, 128):
        g = Grid.uniform(-5, 5, n)
        x = np.asarray(g.points())
        ts = jnp.linspace(0.0, 1.0, 5)
        sol = solve_fokker_planck(lambda t, x: -x, lambda t: 0.5, g, _ou_exact(x, 0.0), ts)
        assert float(sol.mass_error) < 1e-10
        assert float(sol.min_density) > -1e-12
        errs.append(max(np.max(np.abs(np.asarray(sol.p[i]) - _ou_exact(x, float(t))))
                        for i, t in enumerate(ts)))
    order = np.log2(errs[0] / errs[1])
    assert errs[1] < 2e-3 and order > 1.7, (errs, order)


def test_cond_ot_schedule_to_tau_matches_closed_form():
    path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data())
    g = Grid.uniform(-6, 6, 192)
    ts = jnp.linspace(0.0, 1.0, 6)
    sol = schedule_fokker_planck(path.schedule, g, g.sample(path.data.density), ts)
    exact = jax.vmap(lambda t: path.density(t, g.points()))(ts)
    assert float(sol.mass_error) < 1e-10
    assert float(jnp.max(jnp.abs(sol.p - exact))) < 5e-3
    assert float(jnp.max(jnp.abs(sol.p[-1] - exact[-1]))) < 1e-4  # exact limit at t = τ
    assert float(sol.endpoint_jump) < 1e-6


def test_transport_shift_conserves_mass_and_positivity():
    g = Grid.uniform(-5, 5, 200)
    x = np.asarray(g.points())
    p0 = np.exp(-0.5 * x**2 / 0.5**2) / np.sqrt(2 * np.pi * 0.25)
    sol = solve_transport(lambda t, x: jnp.ones_like(x), g, p0, 0.0, 1.0, 200, 100)
    exact = np.exp(-0.5 * (x - 1) ** 2 / 0.5**2) / np.sqrt(2 * np.pi * 0.25)
    assert float(sol.mass_error) < 1e-12
    assert float(sol.min_density) >= 0.0
    assert np.max(np.abs(np.asarray(sol.p[-1]) - exact)) < 0.02
    back = solve_transport(lambda t, x: jnp.ones_like(x), g, sol.p[-1], 1.0, 0.0, 200, 200)
    assert np.max(np.abs(np.asarray(back.p[-1]) - p0)) < 0.04  # backward runs are stable too


def test_bad_inputs_raise():
    g = Grid.uniform(-5, 5, 64)
    x = np.asarray(g.points())
    p0 = _ou_exact(x, 0.0)
    ts = jnp.linspace(0.0, 1.0, 3)
    with pytest.raises(ValueError, match="negative temperature"):
        solve_fokker_planck(lambda t, x: -x, lambda t: -0.5 + 0 * t, g, p0, ts)
    narrow = Grid.uniform(-1.5, 3, 64)
    with pytest.raises(ValueError, match="does not hold the mass"):
        solve_fokker_planck(lambda t, x: -x, lambda t: 0.5, narrow,
                            _ou_exact(np.asarray(narrow.points()), 0.0), ts)
    coarse = Grid.uniform(-5, 5, 8)
    with pytest.raises(ValueError, match="too coarse"):
        solve_fokker_planck(lambda t, x: -x, lambda t: 0.5, coarse,
                            _ou_exact(np.asarray(coarse.points()), 0.0), ts)
    with pytest.raises(ValueError, match="too coarse for stability"):
        solve_transport(lambda t, x: 10 * jnp.ones_like(x), g, p0, 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="not finite"):
        sch = jaxsa.CondOT(1.0)
        solve_fokker_planck(sch.force, sch.temperature, g, p0, ts)


def test_more_bad_inputs_raise():
    g = Grid.uniform(-5, 5, 64)
    x = np.asarray(g.points())
    p0 = _ou_exact(x, 0.0)
    # negative only between the save times
    with pytest.raises(ValueError, match="negative temperature"):
        solve_fokker_planck(lambda t, x: -x, lambda t: 0.5 - jnp.sin(jnp.pi * t), g, p0,
                            jnp.array([0.0, 1.0]))
    # a schedule whose sigma/m decreases (Eq. 24 violated: negative temperature)
    bad = jaxsa.Custom(lambda t, p: 1.0 - 0.5 * t, lambda t, p: t * (1.0 - t), tau=1.0)
    with pytest.raises(ValueError, match="monotonicity"):
        schedule_fokker_planck(bad, g, p0, jnp.array([0.0, 1.0]))
    # transport: mass driven into the boundary cells, and a negative start
    with pytest.raises(ValueError, match="does not hold the mass"):
        solve_transport(lambda t, x: 5 * jnp.ones_like(x), g, p0, 0.0, 1.0, 200)
    with pytest.raises(ValueError, match="non-negative"):
        solve_transport(lambda t, x: jnp.ones_like(x), g, -p0, 0.0, 1.0, 200)
    with pytest.raises(ValueError, match="non-negative"):
        solve_fokker_planck(lambda t, x: -x, lambda t: 0.5, g, -p0, jnp.array([0.0, 1.0]))
    # a step budget too small (grid too fine / problem too stiff for the solver)
    with pytest.raises(ValueError, match="step budget"):
        solve_fokker_planck(lambda t, x: -x, lambda t: 0.5, g, p0, jnp.array([0.0, 1.0]),
                            jaxsa.FPSettings(solver="Tsit5", max_steps=5))
