"""The "edm" and "ays_gaussian" grids of jaxsa.solvers.steps checked against the published
sources (issue 15), not against the formulas as the module states them.

* EDM: Karras, Aittala, Aila, Laine 2022, "Elucidating the design space of diffusion-based
  generative models", Sec. 3, Eq. 5 (and Table 1, "Time steps" of "Ours"):
  sigma_{i<N} = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
  sigma_N = 0, with the published defaults sigma_min = 0.002, sigma_max = 80, rho = 7 and
  N = 18 (NVlabs/edm, generate.py, ``edm_sampler(num_steps=18, sigma_min=0.002,
  sigma_max=80, rho=7)``; the same sequence as k-diffusion's ``get_sigmas_karras``). The
  paper's N levels before the appended 0 are jaxsa's ``n_steps + 1 = N`` levels.
* AYS: Sabour, Fidler, Kreis 2024, "Align your steps", Sec. 3.1: data N(0, c^2 I), the EDM
  parametrisation s(t) = 1, sigma(t) = t, Euler steps of the probability-flow ODE
  dx/dt = -t grad log p_t(x) = t x / (t^2 + c^2) from t_max down to t_min. Minimising the KL
  divergence between the Euler result and the true marginal N(0, (t_min^2 + c^2) I) gives
  equally spaced angles arctan(t_i / c) between arctan(t_min / c) and arctan(t_max / c), i.e.
  t_i = c tan((1 - i/n) arctan(t_min / c) + (i/n) arctan(t_max / c)), i = 0..n ascending
  (the paper's indexing; jaxsa's grid runs the other way). The paper publishes no numbers for
  this Gaussian case; its published schedules (SD 1.5, SDXL, SVD; e.g. SD 1.5, 10 steps:
  14.615, 6.475, ..., 0.029) are optimised numerically for trained models and are *not* a tan
  law for any c, so they are not compared here. Instead the grid is checked against the
  paper's optimality claim itself, with the Euler map computed independently (in closed form
  and by jaxsa's own Euler sampler).

The noise levels are sigma_bar(t) = sigma_t / m_t; with the EDM schedule (m = 1, sigma_t = t,
tau = sigma_max) the grid *is* the level sequence.
"""

import numpy as np
import jax.numpy as jnp
import pytest

import jaxsa
from jaxsa.solvers.samplers import sample
from jaxsa.solvers.steps import step_grid

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0  # EDM's published defaults (Sec. 3, Table 1)

# EDM Eq. 5 with N = 18 (the default of NVlabs/edm generate.py; k-diffusion
# get_sigmas_karras(18, 0.002, 80, rho=7) without its appended 0), written out to 17
# significant digits (evaluated in 40-digit decimal arithmetic).
EDM_SIGMAS_18 = np.array([
    8.0000000000000000e+1, 5.7585984721248158e+1, 4.0785573796507958e+1,
    2.8374584604156837e+1, 1.9352452980325221e+1, 1.2910082380757316e+1,
    8.4009353090998212e+0, 5.3151945217963789e+0, 3.2568215197655383e+0,
    1.9233398370400499e+0, 1.0881706365452794e+0, 5.8534812319454230e-1,
    2.9644228447915726e-1, 1.3951646873101648e-1, 5.9947311235471567e-2,
    2.2934518372333368e-2, 7.5280199627840704e-3, 2.0000000000000000e-3,
], dtype=np.float64)


def _edm_schedule():
    """EDM's own schedule (Table 1, "Ours"): s(t) = 1, sigma(t) = t, so sigma_bar(t) = t."""
    return jaxsa.Custom(lambda t, p: jnp.ones_like(t), lambda t, p: t, tau=SIGMA_MAX)


def _karras(n_levels, s_min, s_max, rho):
    """k-diffusion's get_sigmas_karras / NVlabs/edm's t_steps (before the appended 0), numpy."""
    ramp = np.linspace(0.0, 1.0, n_levels, dtype=np.float64)
    return (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho


# ---- EDM, Eq. 5 -------------------------------------------------------------------------------


def test_edm_grid_is_the_published_edm_sequence():
    g = np.asarray(step_grid(_edm_schedule(), 17, "edm", t_min=SIGMA_MIN, t_max=SIGMA_MAX))
    assert g.dtype == np.float64 and g.shape == (18,)
    np.testing.assert_allclose(g, EDM_SIGMAS_18, rtol=1e-12, atol=0)
    # the second route: the reference implementations' formula, in numpy
    np.testing.assert_allclose(g, _karras(18, SIGMA_MIN, SIGMA_MAX, RHO), rtol=1e-12, atol=0)
    # the literals discriminate: rho = 6 (or 8) moves the inner levels by far more than rtol
    for rho in (6.0, 8.0):
        other = np.asarray(step_grid(_edm_schedule(), 17, "edm", t_min=SIGMA_MIN,
                                     t_max=SIGMA_MAX, rho=rho))
        assert np.max(np.abs(other / EDM_SIGMAS_18 - 1)) > 1e-2, rho


@pytest.mark.parametrize("n_levels", [3, 5, 10, 40])
def test_edm_grid_matches_the_reference_formula_for_other_lengths(n_levels):
    g = step_grid(_edm_schedule(), n_levels - 1, "edm", t_min=SIGMA_MIN, t_max=SIGMA_MAX)
    np.testing.assert_allclose(g, _karras(n_levels, SIGMA_MIN, SIGMA_MAX, RHO), rtol=1e-12)


def test_edm_levels_are_schedule_independent_under_cond_ot():
    # cond-OT: sigma_bar = t/(1 - t), so sigma_bar in [0.002, 80] is t in [0.002/1.002, 80/81];
    # the rule acts on levels, so the levels of the grid are the published sequence again
    t_min, t_max = SIGMA_MIN / (1 + SIGMA_MIN), SIGMA_MAX / (1 + SIGMA_MAX)
    g = np.asarray(step_grid(jaxsa.CondOT(), 17, "edm", t_min=t_min, t_max=t_max))
    np.testing.assert_allclose(g / (1 - g), EDM_SIGMAS_18, rtol=1e-10)


# ---- AYS, Sec. 3.1: Gaussian data, Euler steps in sigma ---------------------------------------

C = 0.5  # the data's standard deviation (EDM's sigma_data, Sec. 5)


def _paper_tan_law(n, c, t_min, t_max):
    """The paper's closed form, ascending t_min = t_0 < ... < t_n = t_max."""
    k = np.arange(n + 1, dtype=np.float64) / n
    return c * np.tan((1 - k) * np.arctan(t_min / c) + k * np.arctan(t_max / c))


def _euler_factor(levels, c):
    """Euler on dx/dt = t x/(t^2 + c^2) (s = 1, sigma(t) = t, data N(0, c^2)) is linear:
    one step b -> a multiplies x by (a b + c^2)/(b^2 + c^2). ``levels`` in any order of
    sampling (first = noise end)."""
    b, a = levels[:-1], levels[1:]
    return np.prod((a * b + c**2) / (b**2 + c**2))


def _euler_kl(levels, c):
    """KL[N(0, t_min^2 + c^2) || law of the Euler result from N(0, t_max^2 + c^2)] per
    dimension (the paper's objective; the reverse KL has the same minimiser)."""
    r = (levels[-1] ** 2 + c**2) / (_euler_factor(levels, c) ** 2 * (levels[0] ** 2 + c**2))
    return 0.5 * (r - 1 - np.log(r))


def _inner_log_gradient(levels, c, h=1e-5):
    """Centred differences of the Euler KL in the log of each inner level (ends fixed)."""
    u = np.log(levels)
    grad = np.empty(len(levels) - 2)
    for j in range(1, len(levels) - 1):
        e = np.zeros(len(levels))
        e[j] = h
        grad[j - 1] = (_euler_kl(np.exp(u + e), c) - _euler_kl(np.exp(u - e), c)) / (2 * h)
    return grad


@pytest.mark.parametrize("n", [4, 10])
def test_ays_grid_is_the_papers_closed_form(n):
    g = np.asarray(step_grid(_edm_schedule(), n, "ays_gaussian", t_min=SIGMA_MIN,
                             t_max=SIGMA_MAX, data_std=C))
    np.testing.assert_allclose(g[::-1], _paper_tan_law(n, C, SIGMA_MIN, SIGMA_MAX), rtol=1e-12)
    # the data's standard deviation enters: c = 1 (the "kl_optimal" schedule of the UIs) differs
    other = np.asarray(step_grid(_edm_schedule(), n, "ays_gaussian", t_min=SIGMA_MIN,
                                 t_max=SIGMA_MAX, data_std=1.0))
    assert np.max(np.abs(other / g - 1)) > 1e-2


def test_ays_grid_minimises_the_euler_kl_of_gaussian_data():
    n = 10
    sched = _edm_schedule()
    kw = dict(t_min=SIGMA_MIN, t_max=SIGMA_MAX)
    g = np.asarray(step_grid(sched, n, "ays_gaussian", data_std=C, **kw))
    kl = _euler_kl(g, C)
    # at equal angles the Euler factor is prod cos(d alpha): r = sec(d alpha)^(2n)
    d_alpha = (np.arctan(SIGMA_MAX / C) - np.arctan(SIGMA_MIN / C)) / n
    r_star = np.cos(d_alpha) ** (-2 * n)
    np.testing.assert_allclose(kl, 0.5 * (r_star - 1 - np.log(r_star)), rtol=1e-10)
    # a stationary point: the centred differences in the inner log-levels vanish (relative to
    # those at a grid that is not optimal, EDM's)
    grad = _inner_log_gradient(g, C)
    edm_grad = _inner_log_gradient(np.asarray(step_grid(sched, n, "edm", **kw)), C)
    assert np.max(np.abs(grad)) < 1e-6 * np.max(np.abs(edm_grad)), (grad, edm_grad)
    u = np.log(g)
    # ... and a minimum: random moves of the inner levels (ends fixed) all raise the KL
    rng = np.random.default_rng(0)
    for _ in range(200):
        du = np.concatenate([[0.0], rng.normal(scale=0.05, size=n - 1), [0.0]])
        assert _euler_kl(np.exp(u + du), C) > kl
    # the other rules' grids on the same levels do worse, and so does the tan law with a wrong c
    for rule, extra in (("edm", {}), ("log_snr", {}), ("ays_gaussian", {"data_std": 2 * C}),
                        ("ays_gaussian", {"data_std": C / 2})):
        other = np.asarray(step_grid(sched, n, rule, **kw, **extra))
        assert _euler_kl(other, C) > 1.05 * kl, (rule, extra, _euler_kl(other, C), kl)


def test_the_papers_euler_map_is_jaxsas_euler_sampler():
    # jaxsa's "euler" steps x in t; with m = 1, sigma_t = t that is the paper's Euler in sigma,
    # so the optimality above is a statement about jaxsa.sample on this path
    n = 10
    path = jaxsa.DiffusionPath(_edm_schedule(), jaxsa.gaussian(0.0, C))
    g = step_grid(path, n, "ays_gaussian", t_min=SIGMA_MIN, t_max=SIGMA_MAX)  # c from the data
    np.testing.assert_allclose(g[::-1], _paper_tan_law(n, C, SIGMA_MIN, SIGMA_MAX), rtol=1e-12)
    x = jnp.asarray([1.0, -2.5], dtype=jnp.float64)
    out = np.asarray(sample(path, x, g, "euler"))
    np.testing.assert_allclose(out, _euler_factor(np.asarray(g), C) * np.asarray(x), rtol=1e-12)


def test_the_optimum_carries_over_to_cond_ot_where_euler_in_t_is_ddim():
    # cond-OT (m = 1 - t, sigma = t): an Euler step of x in t is the DDIM step, i.e. the Euler
    # step of x_bar = x/m in sigma_bar = t/(1 - t), so the paper's Euler KL is jaxsa's; between
    # the levels 0.002 and 80 the grid reaches the same minimum as under EDM's schedule (this
    # does not hold for cosine or VP, whose Euler in t is another integrator)
    n = 10
    path = jaxsa.DiffusionPath(jaxsa.CondOT(), jaxsa.gaussian(0.0, C))
    t_min, t_max = SIGMA_MIN / (1 + SIGMA_MIN), SIGMA_MAX / (1 + SIGMA_MAX)
    g = step_grid(path, n, "ays_gaussian", t_min=t_min, t_max=t_max)
    gn = np.asarray(g)
    np.testing.assert_allclose(gn[::-1] / (1 - gn[::-1]),
                               _paper_tan_law(n, C, SIGMA_MIN, SIGMA_MAX), rtol=1e-10)
    factor = float(sample(path, jnp.ones((1,), dtype=jnp.float64), g, "euler")[0])
    var = lambda t: (1 - t) ** 2 * C**2 + t**2  # P_t = N(0, (1 - t)^2 c^2 + t^2)
    r = var(gn[-1]) / (factor**2 * var(gn[0]))
    d_alpha = (np.arctan(SIGMA_MAX / C) - np.arctan(SIGMA_MIN / C)) / n
    r_star = np.cos(d_alpha) ** (-2 * n)
    np.testing.assert_allclose(r, r_star, rtol=1e-10)


def test_edm_to_zero_is_the_edm_samplers_time_steps():
    """``to_zero=True``: NVlabs/edm's ``t_steps`` exactly — the 18 levels of Eq. 5 and the
    appended sigma_N = 0, i.e. 18 steps of which the last goes from sigma_min to 0."""
    g = np.asarray(step_grid(_edm_schedule(), 18, "edm", t_min=SIGMA_MIN, t_max=SIGMA_MAX,
                             to_zero=True))
    np.testing.assert_allclose(g, np.append(EDM_SIGMAS_18, 0.0), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="to_zero"):
        step_grid(_edm_schedule(), 1, "edm", to_zero=True)
    with pytest.raises(ValueError, match="to_zero"):
        step_grid(_edm_schedule(), 4, "edm", to_zero=1)
    with pytest.raises(ValueError, match="to_zero"):
        step_grid(_edm_schedule(), 4, "uniform", to_zero=True)  # a noise-level option only
