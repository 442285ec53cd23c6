"""Grid thermodynamics against the rotational Ornstein–Uhlenbeck closed form (2D, Gaussian)."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxsa
from jaxsa.fokker_planck import Grid, solve_fokker_planck
from jaxsa.thermo import entropy_rates, ou_gaussian_rates


@pytest.fixture(autouse=True)
def x64():
    with jaxsa.float64():
        yield


def test_rotational_ou_grid_matches_closed_form():
    A = jnp.array([[-1.0, 1.0], [-1.0, -1.0]])  # rotation + contraction: non-conservative
    T = 0.5
    c0 = np.diag([0.8**2, 1.1**2])
    g = Grid.uniform((-7, -7), (7, 7), (56, 56))
    x = np.asarray(g.points())
    p0 = np.exp(-0.5 * (x[..., 0] ** 2 / c0[0, 0] + x[..., 1] ** 2 / c0[1, 1])) / (
        2 * np.pi * np.sqrt(np.linalg.det(c0)))
    force = lambda t, x: x @ A.T  # noqa: E731
    sol = solve_fokker_planck(force, lambda t: T, g, p0, jnp.array([0.0, 1.0]))
    assert float(sol.mass_error) < 1e-10
    ref = ou_gaussian_rates(A, T, c0, 1.0)
    r = entropy_rates(force, lambda t: T, g, sol.p[-1], 1.0, tol=1e-10, maxiter=3000, floor=1e-9)
    rel = lambda a, b: abs(float(a) - float(b)) / abs(float(b))  # noqa: E731
    assert rel(r.T_total, ref.T_total) < 0.03
    assert rel(r.T_bath, ref.T_bath) < 0.03
    assert rel(r.T_system, ref.T_system) < 0.05
    assert rel(r.housekeeping, ref.housekeeping) < 0.03
    assert abs(float(r.v2_sq) - float(ref.v2_sq)) < 0.05 * float(ref.v2_sq) + 1e-3
    assert float(ref.housekeeping) > 0.5  # the rotation makes it non-conservative


def test_ou_closed_form_conservative_case_has_no_housekeeping():
    ref = ou_gaussian_rates(-jnp.eye(2), 0.5, np.diag([0.3, 2.0]), 0.4)
    assert abs(float(ref.housekeeping)) < 1e-10
    assert abs(float(ref.T_system + ref.T_bath - ref.T_total)) < 1e-10
