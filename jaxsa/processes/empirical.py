r"""The forward process in $\mathbb R^d$ for empirical data and isotropic Gaussian mixtures
([spec §3][spec-3], Eqs. 17, 25, 96–97), the estimated process on particles ([spec §4][spec-4], Eqs. 10–11) and
Monte-Carlo estimates of the dissipation $\int T_t\dot S_t^{tot}dt$ and of $D_0$ (Eqs. 36, 78).

Data $q = \sum_k w_k \mathcal N(\mu_k, s_k^2 I)$ with $N$ components in
$\mathbb R^d$; an empirical data set is the case $s_k = 0$ (point masses at the data
points $\mu_k = y_k$). With schedule $(m_t, \sigma_t)$ the marginal is

$$
P_t(x) = \sum_k w_k\, \mathcal N\big(x \,|\, m_t\mu_k,\ v_k I\big), \qquad
v_k = \sigma_t^2 + m_t^2 s_k^2,
$$

with posterior (softmax) weights $r_k(x) = w_k\mathcal N(x|m_t\mu_k, v_kI)/P_t(x)$. Writing
$a_1 = \sum_k r_k/v_k$, $a_2 = \sum_k r_k s_k^2/v_k$ and
$b = \sum_k r_k \mu_k / v_k$,

$$
\nabla\ln P_t = m_t b - a_1 x, \qquad
\mathbb E[y|x_t = x] = \sum_k r_k \frac{s_k^2 m_t x + \sigma_t^2\mu_k}{v_k} = m_t a_2 x + \sigma_t^2 b,
$$

$$
\nu_t(x) = \dot m_t\, \mathbb E[y|x_t=x] - \sigma_t\dot\sigma_t \nabla\ln P_t(x),
$$

which is [spec §3][spec-3]'s velocity rewritten without the removable singularities at $\sigma_t = 0$
(for $s_k > 0$) and $m_t = 0$ (``t = τ`` of cosine and cond-OT), as in
[`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath]. For empirical data ($s_k = 0$) the point masses make
$P_0$ singular: every quantity is defined for $t > 0$ only, where it is finite and
smooth (it is evaluated at ``t = 0`` only by the exact sampler).

The sums over components are reduced by an online log-sum-exp (`jax.lax.scan` over chunks of
``chunk_size`` components: running maximum, rescaled accumulators), so the memory is
``O(batch · chunk_size)`` for any number of data points; squared distances come from one matrix
product per chunk, $\|x - m\mu\|^2 = \|x\|^2 - 2m\,x\cdot\mu + m^2\|\mu\|^2$ (float64 keeps
this accurate down to $\sigma_t \sim 10^{-6}$). For empirical data all components share
the variance $\sigma_t^2$, so the per-query term $\|x\|^2/2\sigma_t^2$ is taken out of
the softmax and added back to $\ln P_t$ only; a velocity evaluation then costs two
``(Q, d) × (d, N)`` matrix products and ``Q N`` exponentials.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import check, is_concrete, promoted_dtype
from jaxsa.densities import GaussianMixture
from jaxsa.solvers.flow import ODESettings, integrate
from jaxsa.processes.base import AbstractForwardProcess
from jaxsa.schedules.standard import Schedule

__all__ = [
    "PARTICLE_ODE",
    "EmpiricalPath",
    "ParticleSolution",
    "PathMarginal",
    "transport_particles",
]

_LOG_2PI = math.log(2 * math.pi)

#: Default settings of the particle ODE: 5th-order Tsit5, tolerance 1e-6 (max-norm over particles).
PARTICLE_ODE = ODESettings(rtol=1e-6, atol=1e-6, solver="Tsit5", max_steps=4096)


def _concrete_array(name, value):
    """``np.asarray(value)`` when concrete (for value checks), else ``None``."""
    return np.asarray(value) if is_concrete(value) else None


class EmpiricalPath(AbstractForwardProcess):
    r"""Forward process of a conditional Gaussian path with data in $\mathbb R^d$ ([spec §3][spec-3]).

    Args:
        schedule: a [`jaxsa.schedules.standard.Schedule`][jaxsa.schedules.standard.Schedule] (``tau`` is taken from it).
        data: either an ``(N, d)`` array of data points (empirical data, point masses) or an
            isotropic d-dimensional [`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture] (``means`` of shape
            ``(K, d)``; its weights and scales are used and ``weights`` must be ``None``).
        weights: ``(N,)`` non-negative weights of the data points, normalised here to sum to
            one; uniform if omitted.
        chunk_size: reduce over the data in chunks of this many points (memory
            ``O(batch · chunk_size)``); ``None``: all points at once.

    Raises ``ValueError`` (before any computation) for data that are not ``(N, d)``, contain
    NaN or inf, weights of the wrong shape, negative or all zero, or a non-positive chunk size.

    All methods take a scalar time ``t`` and points ``x`` of shape ``(..., d)`` (length units).
    For empirical data they need ``t > 0`` ($\sigma_t > 0$).

    Example:
        ```python
        path = EmpiricalPath(jaxsa.CondOT(1.0), images, chunk_size=512)   # images (N, 64)
        v = path.velocity(0.5, x)                                          # x (n, 64)
        x_tau = path.sample(key, 1.0, 1000)                                # exact P_τ samples
        ```
    """

    schedule: Schedule
    points: jax.Array  # (N, d)
    weights: jax.Array  # (N,)
    scales: jax.Array  # (N,); 0 for empirical data
    chunk_size: int | None = eqx.field(static=True)
    has_atoms: bool = eqx.field(static=True)  # some component is a point mass (s_k = 0)
    all_atoms: bool = eqx.field(static=True)  # empirical data: every s_k = 0

    def __init__(self, schedule, data, weights=None, chunk_size=None):
        dt = jnp.result_type(float)
        if isinstance(data, GaussianMixture):
            if data.means.ndim != 2:
                raise ValueError("EmpiricalPath: a GaussianMixture `data` must be d-dimensional "
                                 f"(means of shape (K, d)); got means {data.means.shape}.")
            if weights is not None:
                raise ValueError("EmpiricalPath: pass `weights` only with array data; a "
                                 "GaussianMixture carries its own.")
            points, w, scales = data.means, data.weights, data.scales
        else:
            points = jnp.asarray(data, dtype=dt)
            if points.ndim != 2 or points.shape[0] < 1 or points.shape[1] < 1:
                raise ValueError(f"EmpiricalPath: `data` must have shape (N, d) with N, d >= 1; "
                                 f"got {points.shape}.")
            n = points.shape[0]
            if weights is None:
                w = jnp.full((n,), 1.0 / n, dtype=dt)
            else:
                w = jnp.asarray(weights, dtype=dt)
                if w.shape != (n,):
                    raise ValueError(f"EmpiricalPath: `weights` must have shape ({n},) like the "
                                     f"data points; got {w.shape}.")
                w = check(jnp.all(jnp.isfinite(w)) & jnp.all(w >= 0) & (jnp.sum(w) > 0),
                          "EmpiricalPath: `weights` must be finite, >= 0 and not all zero.", w)
                w = w / jnp.sum(w)
            scales = jnp.zeros((n,), dtype=dt)
        points = check(jnp.all(jnp.isfinite(points)),
                       "EmpiricalPath: `data` contains NaN or inf.", points)
        if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
            raise ValueError(f"EmpiricalPath: `chunk_size` must be a positive integer or None; "
                             f"got {chunk_size!r}.")
        self.schedule = schedule
        self.points, self.weights, self.scales = points, w, scales
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        s = _concrete_array("scales", scales)
        self.has_atoms = True if s is None else bool(np.any(s == 0))
        self.all_atoms = False if s is None else bool(np.all(s == 0))

    # -- shapes ---------------------------------------------------------------------------
    @property
    def tau(self):
        return self.schedule.tau

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def event_shape(self) -> tuple:
        return (self.dim,)

    def singular_at_zero(self) -> bool:
        return self.has_atoms

    @property
    def n_points(self) -> int:
        return self.points.shape[0]

    def _flat(self, x, name="x"):
        x = jnp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"EmpiricalPath: `{name}` must have shape (..., {self.dim}) (the data "
                             f"dimension); got {x.shape}.")
        return x.reshape(-1, self.dim), x.shape[:-1]

    def _chunks(self):
        """Data as ``(n_chunks, C, ...)`` arrays, padded with zero-weight unit-scale components."""
        n, c = self.n_points, self.chunk_size or self.n_points
        c = min(c, n)
        n_chunks = -(-n // c)
        pad = n_chunks * c - n
        logw = jnp.log(self.weights)
        pts, s2 = self.points, self.scales**2
        if pad:
            pts = jnp.concatenate([pts, jnp.zeros((pad, self.dim), pts.dtype)])
            logw = jnp.concatenate([logw, jnp.full((pad,), -jnp.inf, logw.dtype)])
            s2 = jnp.concatenate([s2, jnp.ones((pad,), s2.dtype)])
        return (pts.reshape(n_chunks, c, self.dim), logw.reshape(n_chunks, c),
                s2.reshape(n_chunks, c))

    # -- the reduction over data ---------------------------------------------------------
    def _stats(self, t, x):
        """``(values, log P_t, a1, a2, b)`` for flat ``x`` ``(Q, d)`` (see the module docstring).

        ``t`` is a scalar or a ``(Q,)`` array of one time per point."""
        v = self.schedule.values(t)
        q, d = x.shape
        dt = x.dtype
        m = jnp.broadcast_to(v.m, (q,))[:, None]
        s2t = jnp.broadcast_to(v.sigma_sq, (q,))[:, None]
        min_var = jnp.min(s2t) if self.has_atoms else jnp.min(s2t + m**2 * jnp.min(self.scales**2))
        x = check(min_var > 0, "EmpiricalPath: the marginal P_t has a point mass here "
                  "(sigma_t = 0 with empirical data, i.e. t = 0); evaluate at t > 0.", x)
        xx = jnp.sum(x * x, -1)[:, None]

        atoms = self.all_atoms
        if atoms:  # one variance per query: shift the logits by a per-row constant
            inv_row = 1.0 / s2t  # (Q, 1)
            shift = -0.5 * xx * inv_row - 0.5 * d * (jnp.log(s2t) + _LOG_2PI)

        def body(carry, chunk):
            big_m, s, a1, a2, b = carry
            mu, lw, s2k = chunk
            mu2 = jnp.sum(mu * mu, -1)[None, :]  # (1, C)
            lw = lw[None, :]
            if atoms:
                # ln w_k - |x - m mu_k|^2 / (2 sigma^2) - (d/2) ln(2 pi sigma^2), less `shift`
                logit = lw + inv_row * (m * (x @ mu.T) - 0.5 * m**2 * mu2)
            else:
                var = s2t + m**2 * s2k[None, :]  # (Q, C)
                sq = jnp.maximum(xx - 2 * m * (x @ mu.T) + m**2 * mu2, 0.0)
                logit = lw - 0.5 * sq / var - 0.5 * d * (jnp.log(var) + _LOG_2PI)
            new_m = jnp.maximum(big_m, jnp.max(logit, -1))
            finite = jnp.isfinite(new_m)
            safe_m = jnp.where(finite, new_m, 0.0)
            scale = jnp.where(finite, jnp.exp(big_m - safe_m), 0.0)
            e = jnp.exp(logit - safe_m[:, None])  # rows with new_m = -inf: exp(-inf) = 0
            s = s * scale + jnp.sum(e, -1)
            if atoms:  # a1 = 1/sigma^2 and b = sum r mu / sigma^2 are finished at the end
                b = b * scale[:, None] + e @ mu
            else:
                ei = e / var
                a1 = a1 * scale + jnp.sum(ei, -1)
                a2 = a2 * scale + ei @ s2k
                b = b * scale[:, None] + ei @ mu
            return (new_m, s, a1, a2, b), None

        init = (jnp.full((q,), -jnp.inf, dt), jnp.zeros((q,), dt), jnp.zeros((q,), dt),
                jnp.zeros((q,), dt), jnp.zeros((q, d), dt))
        chunks = self._chunks()
        if chunks[0].shape[0] == 1:
            carry, _ = body(init, jax.tree.map(lambda a: a[0], chunks))
        else:
            carry, _ = jax.lax.scan(body, init, chunks)
        big_m, s, a1, a2, b = carry
        logp = big_m + jnp.log(s)
        if atoms:
            inv = inv_row[:, 0]
            return v, logp + shift[:, 0], inv, a2, b * (inv / s)[:, None]
        return v, logp, a1 / s, a2 / s, b / s[:, None]

    def _fields(self, t, xf):
        """``(ln P_t, E[y|x], score, velocity)`` at flat ``xf`` ``(Q, d)``; ``t`` scalar or ``(Q,)``."""
        v, logp, a1, a2, b = self._stats(t, xf)
        q = xf.shape[0]

        def col(a):
            return jnp.broadcast_to(a, (q,))[:, None]

        mean_y = col(v.m) * a2[:, None] * xf + col(v.sigma_sq) * b
        score = col(v.m) * b - a1[:, None] * xf
        vel = col(v.dm) * mean_y - col(v.sigma_dsigma) * score
        return logp, mean_y, score, vel

    def _public(self, t, x):
        """Shape and value checks in Python, then the jitted reduction; ``x`` ``(..., d)``."""
        xf, batch = self._flat(x)
        t = jnp.asarray(t, xf.dtype)
        if t.ndim != 0:
            raise ValueError(f"EmpiricalPath: `t` must be a scalar time; got shape {t.shape}.")
        if is_concrete(t, self.scales) and not float(
                _min_variance(self.schedule, t, self.scales)) > 0:
            raise ValueError("EmpiricalPath: the marginal P_t has a point mass here (sigma_t "
                                 f"= 0 with empirical data, t = {float(t):g}); evaluate at t > 0.")
        return batch, _fields_jit(self, t, xf)

    # -- public quantities ---------------------------------------------------------------
    def log_density(self, t, x):
        r"""$\ln P_t(x)$ (Eqs. 17, 25; ``ln`` of 1/length^d), shape ``x.shape[:-1]``."""
        batch, f = self._public(t, x)
        return f[0].reshape(batch)

    def score(self, t, x):
        r"""$\nabla\ln P_t(x) = m_t b - a_1 x$ (Eq. 97; 1/length), shape of ``x``."""
        batch, f = self._public(t, x)
        return f[2].reshape(batch + (self.dim,))

    def posterior_mean(self, t, x):
        r"""$\mathbb E[y|x_t = x]$ (Eq. 97; softmax posterior over the data), shape of ``x``."""
        batch, f = self._public(t, x)
        return f[1].reshape(batch + (self.dim,))

    def velocity(self, t, x):
        r"""Velocity field $\nu_t(x) = \dot m_t\mathbb E[y|x] - \sigma_t\dot\sigma_t\nabla\ln P_t$
        (Eqs. 1, 96; length/time), shape of ``x``."""
        batch, f = self._public(t, x)
        return f[3].reshape(batch + (self.dim,))

    def sample_data(self, key, n: int):
        r"""``(n, d)`` samples of the data density $q$ (draws of data points, plus
        $s_k\varepsilon$ for mixture components)."""
        k1, k2 = jax.random.split(key)
        idx = jax.random.choice(k1, self.n_points, shape=(n,), p=self.weights)
        eps = jax.random.normal(k2, (n, self.dim), self.points.dtype)
        return self.points[idx] + self.scales[idx][:, None] * eps

    def sample(self, key, t, n: int):
        r"""``(n, d)`` exact samples $x_t = m_t y + \sigma_t\varepsilon$ of $P_t$ (Eq. 17)
        at the scalar time ``t``, with $y\sim q$, $\varepsilon\sim\mathcal N(0, I)$."""
        k1, k2 = jax.random.split(key)
        v = self.schedule.values(t)
        y = self.sample_data(k1, n)
        m, sig = v.m, v.sigma
        if jnp.ndim(t):  # one time per sample (used by dissipation_mc)
            m, sig = m[:, None], sig[:, None]
        return m * y + sig * jax.random.normal(k2, y.shape, y.dtype)

    def marginal(self, t) -> PathMarginal:
        """$P_t$ as a density object (``log_density``, ``sample``) for [`chi2_divergence`][jaxsa.thermo.monte_carlo.chi2_divergence]."""
        return PathMarginal(self, t)

    def end_marginal(self):
        r"""$P_\tau$: the exact isotropic Gaussian $\mathcal N(0, \sigma_\tau^2 I)$ as a
        one-component [`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture] when $|m_\tau| \le 10^{-12}$ (cosine,
        cond-OT),
        otherwise [`marginal`][jaxsa.processes.empirical.EmpiricalPath.marginal] at τ."""
        v = self.schedule.values(self.tau)
        if is_concrete(v.m) and abs(float(v.m)) <= 1e-12:  # cos(π/2) = 6e-17 in floating point
            dt = self.points.dtype
            return GaussianMixture(jnp.ones(1, dt), jnp.zeros((1, self.dim), dt),
                                   jnp.reshape(v.sigma, (1,)))
        return self.marginal(self.tau)


@eqx.filter_jit
def _min_variance(schedule, t, scales):
    v = schedule.values(t)
    return v.sigma_sq + v.m**2 * jnp.min(scales**2)


@eqx.filter_jit
def _fields_jit(path, t, xf):
    return path._fields(t, xf)


class PathMarginal(eqx.Module):
    """$P_t$ of an [`EmpiricalPath`][jaxsa.processes.empirical.EmpiricalPath] at a fixed time, as a density (log_density, sample)."""

    path: EmpiricalPath
    t: jax.Array

    def log_density(self, x):
        return self.path.log_density(self.t, x)

    def sample(self, key, shape=()):
        n = int(np.prod(shape)) if shape else 1
        return self.path.sample(key, self.t, n).reshape(tuple(shape) + (self.path.dim,))


# ---- the estimated process on particles (docs/spec.md §4) -------------------------------
class ParticleSolution(NamedTuple):
    """Output of [`transport_particles`][jaxsa.processes.empirical.transport_particles].

    Attributes:
        ts: ``(S,)`` the save times.
        xs: ``(S, n, d)`` particle positions at ``ts``.
        num_steps: accepted ODE steps; success: diffrax reported success.
        t_end: the time where the ODE stopped (``t_min`` for empirical data, else ``min(ts)``).
    """

    ts: jax.Array
    xs: jax.Array
    num_steps: jax.Array
    success: jax.Array
    t_end: jax.Array


def transport_particles(path: EmpiricalPath, x_tau, ts, settings: ODESettings = PARTICLE_ODE,
                        t_min=None, chunk_size: int | None = None) -> ParticleSolution:
    r"""Estimated process on particles: integrate the probability-flow ODE $dx/dt = \nu_t(x)$
    (Eqs. 10–11) from ``t = τ`` backwards through the decreasing save times ``ts``.

    The particles form one diffrax ODE system (vector field batched over particles; step control
    by the max-norm over particles, as [`jaxsa.solve_flow`][jaxsa.solvers.flow.solve_flow]). No log-Jacobian is carried
    (its divergence costs ``d`` Jacobian-vector products in ``d`` dimensions).

    For empirical data the velocity is singular at ``t = 0`` (point masses). The ODE then stops
    at ``t_min`` (default ``1e-3 τ``) and a save time ``0`` gets the denoised positions
    $\mathbb E[y|x_{t_{min}}]$, the limit of the flow: every trajectory ends on the data
    point that dominates its posterior (memorisation — the exact empirical velocity reproduces
    the training points, not new ones). Save times in ``(0, t_min)`` are refused.

    Args:
        path: a velocity field on points of shape ``(d,)`` (an
            [`AbstractVelocityField`][jaxsa.processes.base.AbstractVelocityField]: an
            [`EmpiricalPath`][jaxsa.processes.empirical.EmpiricalPath], a learned field, a wrapped callable).
        x_tau: ``(n, d)`` particles at ``t = τ`` (e.g. samples of a perturbed $\tilde P_\tau$).
        ts: ``(S,)`` save times, decreasing, in ``[0, τ]``.
        settings: [`jaxsa.ODESettings`][jaxsa.solvers.flow.ODESettings] (default `PARTICLE_ODE`).
        t_min: where to stop for empirical data (time units); ignored for mixtures with s > 0.
        chunk_size: if set, the particles are split into chunks of this many (the last one
            padded), each an independent diffrax solve with its own step control, run in
            sequence under ``lax.map``. For 10⁵–10⁶ particles this keeps each state in cache and
            stops one stiff particle from setting every particle's step; ``n_steps`` is then the
            largest over chunks and ``success`` holds for all.

    Returns:
        [`ParticleSolution`][jaxsa.processes.empirical.ParticleSolution] with ``xs`` of shape ``(S, n, d)``.
    """
    x_tau = jnp.asarray(x_tau)
    shape = tuple(path.event_shape)
    if x_tau.ndim != 2 or (x_tau.shape[1],) != shape:
        raise ValueError(f"transport_particles: `x_tau` must be (n,) + {shape} (the field's "
                         f"event shape); got {x_tau.shape}.")
    ts = jnp.asarray(ts, x_tau.dtype)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"transport_particles: `ts` must be a non-empty 1D array; got {ts.shape}.")
    tau = path.tau
    if path.singular_at_zero():
        t_min = 1e-3 * tau if t_min is None else jnp.asarray(t_min, x_tau.dtype)
    else:
        t_min = jnp.zeros((), x_tau.dtype)
    cdt = promoted_dtype(ts, tau, t_min)  # a float32 field may have a float64 tau
    ok = (jnp.all(jnp.diff(ts) <= 0) & jnp.all(ts.astype(cdt) <= jnp.asarray(tau, cdt)) & jnp.all(ts >= 0)
          & jnp.all((ts == 0) | (ts.astype(cdt) >= jnp.asarray(t_min, cdt))))
    ts = check(ok, "transport_particles: `ts` must decrease within [0, tau], each either 0 or "
               ">= t_min (the flow of empirical data is singular at t = 0).", ts)
    c2 = promoted_dtype(ts, t_min)
    ode_ts = jnp.maximum(ts.astype(c2), jnp.asarray(t_min, c2))
    t_end = ode_ts[-1]

    xs, n_steps, success = integrate(path.velocity, x_tau, tau, t_end, ode_ts, settings, chunk_size)
    if path.singular_at_zero():
        den = path.posterior_mean(t_end, xs)
        xs = jnp.where((ts == 0)[:, None, None], den, xs)
    return ParticleSolution(ts, xs, n_steps, success, t_end)


# ---- Monte-Carlo estimates ---------------------------------------------------------------
