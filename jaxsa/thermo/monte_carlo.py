r"""Monte-Carlo estimates in $d$ dimensions, each with its standard error and 95% interval:
the dissipation $\int T_t\dot S^{tot}_t dt$ of a forward process on particles (Eqs. 36, 77),
$\chi^2$ divergences such as $D_0$ (Eq. 78), and $c_2$ of a Gaussian path by quadrature."""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsa.densities import GaussianMixture
from jaxsa.quadrature import gauss_legendre
from jaxsa.schedules.standard import Schedule
from jaxsa.processes.empirical import EmpiricalPath

__all__ = ["MCEstimate", "dissipation_mc", "chi2_divergence", "chi2_isotropic_gaussian", "gaussian_path_c2"]

class MCEstimate(NamedTuple):
    """A Monte-Carlo estimate with its standard error and 95% confidence half-width
    (normal approximation: ``ci95 = 1.96 · stderr``), and the sample sizes."""

    value: jax.Array
    stderr: jax.Array
    ci95: jax.Array
    n: int
    n_time: int = 1
    rate_t: jax.Array | None = None  # (n_time,) stratum centres (dissipation_mc)
    rate: jax.Array | None = None  # (n_time,) per-stratum means of E||ν_t||²


def dissipation_mc(path: EmpiricalPath, key, n: int, n_time: int) -> MCEstimate:
    r"""The dissipation $\int_0^\tau T_t\dot S_t^{tot}dt = \int_0^\tau \mathbb E_{P_t}\|\nu_t\|^2 dt$
    (Eqs. 36, 77; length²/time, mobility 1) by stratified Monte Carlo over exact samples.

    This is the entropy production weighted by the temperature at each time, the right-hand
    side of the speed-accuracy relation Eq. 77 — not the entropy production $S^{tot}$ itself
    (units of $k_B$; [`jaxsa.entropy_production`][jaxsa.thermo.path_entropy.entropy_production]). Re-exported as
    ``jaxsa.dissipation_mc``.

    Time is split into ``n_time`` equal strata; in stratum ``j`` each of ``n`` samples draws its
    own uniform time $t \in (t_j, t_{j+1})$ and an exact sample
    $x_t = m_t y + \sigma_t\varepsilon$ of $P_t$. The estimate
    $\frac{\tau}{n_{time}}\sum_j \overline{\|\nu\|^2}_j$ is unbiased for the time integral
    too (no quadrature error), and its variance $(\tau/n_{time})^2\sum_j s_j^2/n$ gives the
    confidence interval. For these conservative forces it equals $c_2 = \int v_2^2dt$
    ([spec §3][spec-3]).

    Args:
        path: [`EmpiricalPath`][jaxsa.processes.empirical.EmpiricalPath]. key: PRNG key. n: samples per stratum (>= 2).
        n_time: number of time strata (>= 1).

    Returns:
        [`MCEstimate`][jaxsa.thermo.monte_carlo.MCEstimate] (``rate`` holds the per-stratum means, ``rate_t`` the stratum centres).
    """
    if int(n) != n or n < 2:
        raise ValueError(f"dissipation_mc: need `n` >= 2 samples per stratum for a standard "
                         f"error; got {n!r}.")
    if int(n_time) != n_time or n_time < 1:
        raise ValueError(f"dissipation_mc: `n_time` must be an integer >= 1; got {n_time!r}.")
    return _dissipation_mc(path, key, int(n), int(n_time))


@eqx.filter_jit
def _dissipation_mc(path, key, n, n_time):
    tau = path.tau
    dt = path.points.dtype
    kt, kx = jax.random.split(key)
    u = jax.random.uniform(kt, (n_time, n), dt, minval=1e-12, maxval=1.0)
    t = tau * (jnp.arange(n_time, dtype=dt)[:, None] + u) / n_time

    def one(tj, kj):  # one stratum: every sample with its own time
        x = path.sample(kj, tj, n)
        return jnp.sum(path._fields(tj, x)[3] ** 2, -1)

    sq = jax.lax.map(lambda a: one(*a), (t, jax.random.split(kx, n_time)))  # (n_time, n)
    means = jnp.mean(sq, 1)
    var = jnp.var(sq, 1, ddof=1)
    h = tau / n_time
    value = h * jnp.sum(means)
    se = h * jnp.sqrt(jnp.sum(var) / n)
    centres = tau * (jnp.arange(n_time, dtype=dt) + 0.5) / n_time
    return MCEstimate(value, se, 1.96 * se, n, n_time, centres, means)


def chi2_isotropic_gaussian(mean_p, std_p, mean_q, std_q):
    r"""Pearson $\chi^2(P\|Q) = \int (P - Q)^2/Q\,dx$ (Eq. 78) between isotropic Gaussians
    $P = \mathcal N(\mu_P, s_P^2 I)$, $Q = \mathcal N(\mu_Q, s_Q^2 I)$ in $\mathbb R^d$:

    $$
    \chi^2 = \Big(\frac{s_Q^2}{s_P\sqrt{2s_Q^2 - s_P^2}}\Big)^d
    \exp\frac{\|\mu_P - \mu_Q\|^2}{2s_Q^2 - s_P^2} - 1,
    $$

    finite only if $s_P^2 < 2s_Q^2$ (``inf`` otherwise). ``mean_*``: ``(d,)``; ``std_*``
    scalars (length units). Computed as ``expm1`` of the logarithm (precise for small χ²).
    """
    mp, mq = jnp.atleast_1d(mean_p), jnp.atleast_1d(mean_q)
    d = mp.shape[-1]
    den = 2 * std_q**2 - std_p**2
    safe = jnp.where(den > 0, den, 1.0)
    log_ratio = d * (2 * jnp.log(std_q) - jnp.log(std_p) - 0.5 * jnp.log(safe))
    val = jnp.expm1(log_ratio + jnp.sum((mp - mq) ** 2, -1) / safe)
    return jnp.where(den > 0, val, jnp.inf)


def _single_gaussian(p):
    return isinstance(p, GaussianMixture) and p.means.ndim == 2 and p.weights.shape[0] == 1


def chi2_divergence(p_tilde, p, key=None, n: int | None = None):
    r"""$D_0 = \chi^2(\tilde P\|P) = \int(\tilde P - P)^2/P\,dx$ (Eq. 78), dimensionless.

    Closed form ([`chi2_isotropic_gaussian`][jaxsa.thermo.monte_carlo.chi2_isotropic_gaussian], ``stderr = 0``) when both are one-component
    isotropic Gaussian mixtures ([`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture]) in d dimensions; otherwise Monte Carlo over ``n``
    samples of ``p``: $\chi^2 = \mathbb E_P[(\tilde P/P - 1)^2]$, with the standard error of
    the mean (heavy-tailed when the ratio is: check that it is small against the value).

    Args:
        p_tilde, p: densities with ``log_density(x)`` (and ``p.sample(key, shape)``), e.g.
            [`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture] or [`EmpiricalPath.marginal`][jaxsa.processes.empirical.EmpiricalPath.marginal].
        key, n: PRNG key and sample count (>= 2) for the Monte-Carlo case.

    Returns:
        [`MCEstimate`][jaxsa.thermo.monte_carlo.MCEstimate].
    """
    if _single_gaussian(p_tilde) and _single_gaussian(p):
        if p_tilde.means.shape != p.means.shape:
            raise ValueError(f"chi2_divergence: dimensions differ: {p_tilde.means.shape[1]} and "
                             f"{p.means.shape[1]}.")
        val = chi2_isotropic_gaussian(p_tilde.means[0], p_tilde.scales[0], p.means[0], p.scales[0])
        z = jnp.zeros_like(val)
        return MCEstimate(val, z, z, 0)
    if key is None or n is None or int(n) != n or n < 2:
        raise ValueError("chi2_divergence: the Monte-Carlo case needs a PRNG `key` and `n` >= 2 "
                         f"samples (got n={n!r}).")
    x = p.sample(key, (int(n),))
    lr = p_tilde.log_density(x) - p.log_density(x)
    sq = jnp.expm1(lr) ** 2
    val = jnp.mean(sq)
    se = jnp.std(sq, ddof=1) / jnp.sqrt(n)
    return MCEstimate(val, se, 1.96 * se, int(n))


def gaussian_path_c2(schedule: Schedule, mean, std, n_nodes: int = 64):
    r"""$c_2 = \int_0^\tau v_2^2 dt$ for Gaussian data $\mathcal N(\mu, s^2 I)$
    ([spec §3][spec-3], [§4][spec-4]): $P_t = \mathcal N(m_t\mu, s_t^2 I)$, $s_t^2 = \sigma_t^2 + m_t^2s^2$,
    the velocity is affine, $\nu_t = \dot m_t\mu + (\dot s_t/s_t)(x - m_t\mu)$, and
    $\mathbb E\|\nu_t\|^2 = \dot m_t^2\|\mu\|^2 + d\,\dot s_t^2$. Gauss–Legendre in time
    (``n_nodes`` nodes; the integrand is smooth for ``s > 0``). A reference for tests.
    """
    mean = jnp.atleast_1d(jnp.asarray(mean))
    d = mean.shape[-1]
    x, w = gauss_legendre(n_nodes, dtype=jnp.result_type(float))  # on [0, 1]
    tau = schedule.tau
    t = tau * x
    v = schedule.values(t)
    st2 = v.sigma_sq + v.m**2 * std**2
    dst = (v.sigma_dsigma + v.m * v.dm * std**2) / jnp.sqrt(st2)
    rate = v.dm**2 * jnp.sum(mean**2) + d * dst**2
    return tau * jnp.sum(w * rate)
