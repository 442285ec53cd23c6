r"""Entropy production of Langevin processes in path space ([spec §1][spec-1], Eqs. 36–50):
$S^{tot}$ from the density by Gauss–Legendre quadrature, and per trajectory (diffrax
Euler–Maruyama) the log Radon–Nikodym derivative against the dual dynamics and the stochastic
entropy production, with the integral fluctuation theorem. The processes are in
[`jaxsa.processes.langevin`][jaxsa.processes.langevin].

From trajectories (diffrax Euler–Maruyama, vmapped over paths, explicit PRNG keys),
[`path_entropy`][jaxsa.thermo.path_entropy.path_entropy] returns per trajectory

* the log Radon–Nikodym derivative $\ln dP_F/dP_B$ of the forward path measure against the
  *dual* dynamics $dx = (f - 2\nu)dt + \sqrt{2T}dB$ (Eqs. 41–47); by Girsanov
  $\ln dP_F/dP_B = \int \|\nu\|^2/T\,dt + \int \sqrt{2/T}\,\nu\cdot dB$, whose mean is
  $\mathrm{KL}(P_F\|P_B) = S^{tot}_\tau$;
* the stochastic entropy production $s^{tot} = \ln P_F(\Gamma)/P'_B(\tilde\Gamma) =
  \ln P_{t_0}(x_{t_0}) - \ln P_{t_1}(x_{t_1}) + \int f\circ dx/T$ against the time-reversed
  process started from $P_{t_1}$ (Eqs. 48–50, Appendix D); the Stratonovich heat is
  integrated in Itô form, $\int f\circ dx/T = \int (\|f\|^2/T + \nabla\cdot f)dt +
  \int\sqrt{2/T}\,f\cdot dB$.

Both satisfy the integral fluctuation theorem $\mathbb E[e^{-s}] = 1$ and have mean
$S^{tot} = \int_{t_0}^{t_1}\dot S^{tot}_t dt$, which [`entropy_production`][jaxsa.thermo.path_entropy.entropy_production] computes
from the density by Gauss–Legendre quadrature. Euler–Maruyama has weak order 1: the trajectory
estimates carry an $O(\Delta t)$ bias besides their Monte-Carlo error.
"""

from __future__ import annotations

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsa._checks import as_float
from jaxsa.quadrature import gauss_legendre
from jaxsa.processes.langevin import as_process, check_window

__all__ = ["entropy_production", "PathEntropy", "mean_ci", "simulate_langevin", "path_entropy"]

def entropy_production(process, t0, t1, n_gauss: int = 64):
    r"""The total entropy production $S^{tot} = \int_{t_0}^{t_1}\dot S^{tot}_t\,dt$ of
    ``process`` on ``[t0, t1]`` (Eq. 36; a scalar, dimensionless: units of $k_B$), from the
    density by ``n_gauss``-point Gauss–Legendre quadrature in time.

    Not to be confused with the dissipation $\int T_t\dot S^{tot}_t dt$ (length²/time) of
    Eq. 77, which [`jaxsa.dissipation_mc`][jaxsa.thermo.monte_carlo.dissipation_mc] estimates; for a constant
    temperature the two differ by the factor $T$.

    Args:
        process: a process of this module or a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath].
        t0, t1: the window, with $0 < T_t < \infty$ on it (checked).
        n_gauss: Gauss–Legendre nodes.
    """
    process = as_process(process)
    check_window(process, t0, t1)
    return _entropy_production(process, as_float(t0), as_float(t1), n_gauss)


@eqx.filter_jit
def _entropy_production(process, t0, t1, n_gauss):
    ts, w = gauss_legendre(n_gauss, as_float(t0), as_float(t1))
    return jnp.sum(w * jax.vmap(process.entropy_rate)(ts))


class PathEntropy(eqx.Module):
    r"""Per-trajectory path-space quantities from [`path_entropy`][jaxsa.thermo.path_entropy.path_entropy] (arrays ``(n_paths,)``).

    ``log_ratio_dual``: $\ln dP_F/dP_B$ against the dual dynamics (Eqs. 41–47);
    ``s_sys`` = $\ln P_{t_0}(x_{t_0}) - \ln P_{t_1}(x_{t_1})$; ``s_bath`` = $\int f\circ dx/T$;
    ``s_tot = s_sys + s_bath`` (Eqs. 48–50); ``x_end``: ``(n_paths, d)`` final points.
    """

    log_ratio_dual: jax.Array
    s_sys: jax.Array
    s_bath: jax.Array
    s_tot: jax.Array
    x_end: jax.Array

    def summary(self, z: float = 3.0) -> dict:
        r"""Means with ``z``-standard-error half widths for $S^{tot}$ (both estimators)
        and for the integral fluctuation theorem $\mathbb E[e^{-s}]$ (should be 1)."""
        out = {}
        for name, s in (("dual", self.log_ratio_dual), ("s_tot", self.s_tot)):
            out[f"S_tot_{name}"] = mean_ci(s, z)
            out[f"ift_{name}"] = mean_ci(jnp.exp(-s), z)
        return out


def mean_ci(samples, z: float = 3.0):
    """``(mean, half_width)`` with half width ``z`` standard errors of the mean."""
    s = jnp.asarray(samples)
    return float(jnp.mean(s)), float(z * jnp.std(s, ddof=1) / math.sqrt(s.shape[0]))


class _EnsembleNoise(diffrax.ControlTerm):
    """Diffusion of a whole ensemble: per-path ``(p, d)`` matrices times per-path ``(d,)``
    Brownian increments (batched matrix-vector product)."""

    def prod(self, vf, control):
        return jnp.einsum("npd,nd->np", vf, control)


def _solve_ensemble(drift, diffusion, key, y0, t0, t1, n_steps, d, saveat):
    """One diffrax Euler–Maruyama solve for an ensemble ``y0`` of shape ``(n_paths, p)``.

    The time is shared by all trajectories, so the marginal's moments are computed once per
    step; ``drift``/``diffusion`` act on one trajectory and are vmapped over the ensemble."""
    n = y0.shape[0]
    bm = diffrax.UnsafeBrownianPath(shape=(n, d), key=key)
    terms = diffrax.MultiTerm(
        diffrax.ODETerm(lambda t, y, a: jax.vmap(lambda z: drift(t, z))(y)),
        _EnsembleNoise(lambda t, y, a: jax.vmap(lambda z: diffusion(t, z))(y), bm))
    return diffrax.diffeqsolve(terms, diffrax.Euler(), t0, t1, (t1 - t0) / n_steps, y0,
                               saveat=saveat, max_steps=n_steps + 2,
                               adjoint=diffrax.ForwardMode()).ys


def simulate_langevin(process, key, n_paths: int, t0, t1, n_steps: int = 200, x0=None,
                      n_save: int = 2):
    r"""Trajectories of $dx = f_t(x)dt + \sqrt{2T_t}dB_t$ (Eq. 1) by diffrax Euler–Maruyama.

    Args:
        process: a process of this module (or a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath]).
        key: PRNG key (split into the start points' key and the Brownian motion's key).
        n_paths, n_steps: trajectories and fixed steps on ``[t0, t1]``.
        x0: ``(n_paths, d)`` start points (default: samples of $P_{t_0}$).
        n_save: number of equally spaced save times including both ends.

    The ensemble is one diffrax solve (drift and diffusion vmapped over trajectories, one
    ``(n_paths, d)`` Brownian motion), so per-time work is shared by all trajectories.

    Returns ``(ts, xs)``: ``(n_save,)`` times and ``(n_paths, n_save, d)`` positions.
    """
    process = as_process(process)
    check_window(process, t0, t1)
    k0, kp = jax.random.split(key)
    if x0 is None:
        x0 = process.sample(k0, t0, n_paths)
    x0 = as_float(x0)
    if x0.shape != (n_paths, process.dim):
        raise ValueError(f"`x0` must have shape {(n_paths, process.dim)}, got {x0.shape}.")
    ts = jnp.linspace(as_float(t0), as_float(t1), n_save)
    return ts, _simulate(process, kp, x0, ts, n_steps)


@eqx.filter_jit
def _simulate(process, key, x0, ts, n_steps):
    d = process.dim

    def drift(t, x):
        return process.force(t, x)

    def diffusion(t, x):
        return jnp.sqrt(2 * process.temperature(t)) * jnp.eye(d, dtype=x.dtype)

    ys = _solve_ensemble(drift, diffusion, key, x0, ts[0], ts[-1], n_steps, d,
                         diffrax.SaveAt(ts=ts))
    return jnp.swapaxes(ys, 0, 1)


def path_entropy(process, key, n_paths: int, t0, t1, n_steps: int = 200) -> PathEntropy:
    """Entropy production along ``n_paths`` Langevin trajectories on ``[t0, t1]`` (Eqs. 41–50).

    The SDE is augmented with the two stochastic integrals of the module docstring and solved
    by diffrax Euler–Maruyama (``n_steps`` fixed steps, the same Brownian increments for the
    position and the integrals; drift and diffusion vmapped over the trajectories of one
    ensemble solve); start points are drawn from $P_{t_0}$ with a key split from ``key``.

    Example:
        ```python
        pe = path_entropy(OrnsteinUhlenbeck([[-1.]], .5, [2.], [[.01]]), key, 20000, 0., 1.)
        pe.summary()["S_tot_dual"], entropy_production(ou, 0., 1.)
        ```
    """
    process = as_process(process)
    check_window(process, t0, t1)
    if n_paths < 2 or n_steps < 1:
        raise ValueError(f"`n_paths` must be >= 2 and `n_steps` >= 1; got {n_paths}, {n_steps}.")
    k0, kp = jax.random.split(key)
    x0 = process.sample(k0, t0, n_paths)
    return _path_entropy_run(process, kp, x0, as_float(t0), as_float(t1), n_steps)


@eqx.filter_jit
def _path_entropy_run(process, key, x0, t0, t1, n_steps):
    d = process.dim

    def drift(t, y):
        x = y[:d]
        T = process.temperature(t)
        nu, f = process.velocity(t, x), process.force(t, x)
        return jnp.concatenate([f, jnp.stack([nu @ nu / T, f @ f / T + process.div_force(t, x)])])

    def diffusion(t, y):
        x = y[:d]
        T = process.temperature(t)
        nu, f = process.velocity(t, x), process.force(t, x)
        c = jnp.sqrt(2.0 / T)
        return jnp.concatenate([jnp.sqrt(2 * T) * jnp.eye(d, dtype=x.dtype), c * nu[None], c * f[None]])

    y0 = jnp.concatenate([x0, jnp.zeros((x0.shape[0], 2), x0.dtype)], axis=1)
    y = _solve_ensemble(drift, diffusion, key, y0, t0, t1, n_steps, d, diffrax.SaveAt(t1=True))[-1]
    x1 = y[:, :d]
    s_sys = jax.vmap(lambda a: process.log_density(t0, a))(x0) - \
        jax.vmap(lambda a: process.log_density(t1, a))(x1)
    return PathEntropy(y[:, d], s_sys, y[:, d + 1], s_sys + y[:, d + 1], x1)
