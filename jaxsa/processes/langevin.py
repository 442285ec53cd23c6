r"""Langevin processes as velocity fields with marginals ([spec §1][spec-1], Eqs. 1, 36–40).

A *process* is an equinox module describing the Langevin SDE
$dx = f_t(x)\,dt + \sqrt{2T_t}\,dB_t$ (Eq. 1) together with its marginals $P_t$:

* [`OrnsteinUhlenbeck`][jaxsa.processes.langevin.OrnsteinUhlenbeck] — $f(x) = Ax + b$ with constant ``A``, ``b``, ``T`` and a
  Gaussian start: every marginal is Gaussian and closed form (matrix exponential);
* [`GaussianGeodesic`][jaxsa.processes.langevin.GaussianGeodesic] — the constant-temperature process that moves an isotropic Gaussian
  along the $W_2$ geodesic at constant speed (time-dependent linear force); the speed limit
  Eq. 68 is an equality for it;
* [`DiffusionProcess`][jaxsa.processes.langevin.DiffusionProcess] — the forward process of a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath] (a noise
  schedule with Gaussian-mixture data; [spec §3][spec-3]), e.g. the paper's schedules with
  [`jaxsa.paper_data`][jaxsa.densities.paper_data].

Each gives, for one point ``x`` of shape ``(d,)``: ``force``, ``div_force``, ``temperature``,
``velocity`` $\nu_t = f_t - T_t\nabla\ln P_t$, ``log_density``, ``grad_potential``
($\nabla\phi_t$, the projection of $\nu_t$ on gradient fields, §2), and from the
density ``T_entropy_rate`` $= T_t\dot S^{tot}_t = \int\|\nu_t\|^2P_t$ (Eq. 36) and ``v2_sq``
(Eq. 66).

Their path-space entropy production (from the density and from trajectories, with the
fluctuation theorem) is in [`jaxsa.thermo.path_entropy`][jaxsa.thermo.path_entropy].

Where $T_t = 0$ (``t = 0`` for cond-OT and cosine) $\dot S^{tot}$ diverges; choose a
window ``[t0, t1]`` with $0 < T_t < \infty$.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import as_float, check
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.processes.base import AbstractVelocityField

__all__ = [
    "OrnsteinUhlenbeck",
    "GaussianGeodesic",
    "DiffusionProcess",
    "as_process",
    "check_window",
]


def _jit_method(fn):
    """``eqx.filter_jit`` with positional Python numbers turned into arrays first, so that a
    method called at many times ``t`` compiles once (filter_jit treats Python scalars as static)."""
    jitted = eqx.filter_jit(fn)

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        args = tuple(as_float(a) if isinstance(a, (int, float)) else a for a in args)
        return jitted(self, *args, **kwargs)

    return wrapper


def _solve(a, b):
    """``a⁻¹ b`` for one ``(d, d)`` matrix and points ``b`` of shape ``batch + (d,)``."""
    return jnp.linalg.solve(a, b.reshape(-1, b.shape[-1]).T).T.reshape(b.shape)


def _lyapunov_sym(cov, rhs):
    """Symmetric ``S`` with ``S cov + cov S = rhs`` (eigenbasis of ``cov``)."""
    lam, V = jnp.linalg.eigh(cov)
    R = V.T @ rhs @ V
    return V @ (R / (lam[:, None] + lam[None, :])) @ V.T


class _Process(AbstractVelocityField):
    """Shared interface (see module docstring): a velocity field on points of shape ``(d,)``
    (``batch + (d,)``), with a force, a temperature and marginal densities."""

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def event_shape(self) -> tuple:
        return (self.dim,)

    @_jit_method
    def grad_potential(self, t, x):
        r"""$\nabla\phi_t(x)$: the gradient part of $\nu_t$ in $L^2(P_t)$."""
        return self.velocity(t, x)

    def entropy_rate(self, t):
        r"""$\dot S^{tot}_t = T_t\dot S^{tot}_t / T_t$ (Eq. 36; 1/time)."""
        return self.T_entropy_rate(t) / self.temperature(t)


class _GaussianProcess(_Process):
    """Linear force $f_t = A_tx + b_t$, Gaussian marginals from `moments`."""

    @_jit_method
    def moments(self, t):
        raise NotImplementedError

    def linear_force(self, t):
        raise NotImplementedError

    @_jit_method
    def moment_rates(self, t):
        """``(mean, cov, dmean, dcov)`` at ``t`` (derivatives by forward-mode autodiff)."""
        t = as_float(t)
        (mu, cov), (dmu, dcov) = jax.jvp(self.moments, (t,), (jnp.ones_like(t),))
        return mu, cov, dmu, dcov

    @property
    def dim(self) -> int:
        return int(np.shape(self.mean0)[0])

    def force(self, t, x):
        A, b = self.linear_force(t)
        return jnp.einsum("ij,...j->...i", A, x) + b.reshape((1,) * (jnp.ndim(x) - 1) + b.shape)

    def div_force(self, t, x):
        return jnp.trace(self.linear_force(t)[0])

    @_jit_method
    def log_density(self, t, x):
        mu, cov = self.moments(t)
        return jax.scipy.stats.multivariate_normal.logpdf(x, mu, cov)

    @_jit_method
    def velocity(self, t, x):
        r"""$\nu_t(x) = A_tx + b_t + T_t\Sigma_t^{-1}(x-\mu_t)$ (length/time)."""
        mu, cov = self.moments(t)
        return self.force(t, x) + self.temperature(t) * _solve(cov, x - mu.reshape((1,) * (jnp.ndim(x) - 1) + mu.shape))

    @_jit_method
    def grad_potential(self, t, x):
        r"""$\nabla\phi_t(x) = S_t(x-\mu_t) + \dot\mu_t$, $S\Sigma+\Sigma S = \dot\Sigma$."""
        mu, cov, dmu, dcov = self.moment_rates(t)
        return jnp.einsum("ij,...j->...i", _lyapunov_sym(cov, dcov), x - mu) + dmu

    @_jit_method
    def T_entropy_rate(self, t):
        r"""$T\dot S^{tot} = \mathrm{tr}(B\Sigma B^\top) + \|\dot\mu\|^2$, $B = A + T\Sigma^{-1}$."""
        _, cov, dmu, _ = self.moment_rates(t)
        A, _ = self.linear_force(t)
        B = A + self.temperature(t) * jnp.linalg.inv(cov)
        return jnp.trace(B @ cov @ B.T) + dmu @ dmu

    @_jit_method
    def v2_sq(self, t):
        r"""$v_2^2 = \mathrm{tr}(S\Sigma S) + \|\dot\mu\|^2$ (Eq. 66)."""
        _, cov, dmu, dcov = self.moment_rates(t)
        S = _lyapunov_sym(cov, dcov)
        return jnp.trace(S @ cov @ S) + dmu @ dmu

    def sample(self, key, t, n: int):
        """``(n, d)`` samples of $P_t$."""
        mu, cov = self.moments(t)
        return jax.random.multivariate_normal(key, mu, cov, (n,))

    def quadrature(self, t, n: int = 32):
        """Tensor Gauss–Hermite nodes ``(n**d, d)`` and weights for expectations over $P_t$."""
        mu, cov = self.moments(t)
        z, w = np.polynomial.hermite_e.hermegauss(n)
        w = w / math.sqrt(2 * math.pi)
        grids = np.meshgrid(*([z] * self.dim), indexing="ij")
        Z = np.stack([g.ravel() for g in grids], -1)
        W = np.prod(np.stack(np.meshgrid(*([w] * self.dim), indexing="ij"), -1).reshape(-1, self.dim), -1)
        L = jnp.linalg.cholesky(cov)
        return mu[None, :] + jnp.asarray(Z, mu.dtype) @ L.T, jnp.asarray(W, mu.dtype)

    @_jit_method
    def w2(self, t0, t1):
        """$W_2(P_{t_0}, P_{t_1})$ (Eq. 59)."""
        from jaxsa.metrics import w2_gaussian

        return w2_gaussian(*self.moments(t0), *self.moments(t1))


class OrnsteinUhlenbeck(_GaussianProcess):
    r"""Ornstein–Uhlenbeck process $dx = (Ax + b)dt + \sqrt{2T}dB$, $x_0\sim\mathcal N(\mu_0,\Sigma_0)$.

    Args:
        A: ``(d, d)`` drift matrix (1/time); non-symmetric ``A`` gives a non-conservative force.
        T: constant temperature > 0 (length²/time).
        mean0: ``(d,)``; cov0: ``(d, d)`` positive definite; b: ``(d,)`` (default 0).
        tau: the time horizon of the process as a velocity field (default 1; its law is
            defined for every ``t >= 0``).

    Moments $\dot\mu = A\mu + b$, $\dot\Sigma = A\Sigma + \Sigma A^\top + 2TI$ are
    solved exactly by one matrix exponential of the linear system in $(\mathrm{vec}\,\Sigma, \mu, 1)$.

    Example:
        ```python
        ou = OrnsteinUhlenbeck([[-1.0]], 0.5, [2.0], [[0.01]])
        entropy_production(ou, 0.0, 1.0)
        ```
    """

    A: jax.Array
    b: jax.Array
    T: jax.Array
    mean0: jax.Array
    cov0: jax.Array
    tau: jax.Array

    def __init__(self, A, T, mean0, cov0, b=None, tau=1.0):
        A, mean0, cov0 = as_float(A), as_float(mean0), as_float(cov0)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or mean0.shape != A.shape[:1] or cov0.shape != A.shape:
            raise ValueError("OrnsteinUhlenbeck: need `A` (d, d), `mean0` (d,), `cov0` (d, d); got "
                             f"{A.shape}, {mean0.shape}, {cov0.shape}.")
        b = jnp.zeros_like(mean0) if b is None else as_float(b)
        if b.shape != mean0.shape:
            raise ValueError(f"OrnsteinUhlenbeck: `b` must have shape {mean0.shape}, got {b.shape}.")
        T = check(as_float(T) > 0, "OrnsteinUhlenbeck: temperature `T` must be > 0.", as_float(T))
        cov0 = check(jnp.all(jnp.linalg.eigvalsh(0.5 * (cov0 + cov0.T)) > 0) & jnp.allclose(cov0, cov0.T),
                     "OrnsteinUhlenbeck: `cov0` must be symmetric positive definite.", cov0)
        self.A, self.b, self.T, self.mean0, self.cov0 = A, b, T, mean0, cov0
        self.tau = check(as_float(tau) > 0, "OrnsteinUhlenbeck: `tau` must be > 0.", as_float(tau))

    def temperature(self, t):
        return self.T * jnp.ones_like(as_float(t))

    def linear_force(self, t):
        return self.A, self.b

    @_jit_method
    def moment_rates(self, t):
        r"""``(mean, cov, dmean, dcov)``: $\dot\mu = A\mu + b$, $\dot\Sigma = A\Sigma + \Sigma A^\top + 2TI$."""
        mu, cov = self.moments(t)
        dcov = self.A @ cov + cov @ self.A.T + 2 * self.T * jnp.eye(self.dim, dtype=cov.dtype)
        return mu, cov, self.A @ mu + self.b, dcov

    @_jit_method
    def moments(self, t):
        d = self.A.shape[0]
        eye = jnp.eye(d, dtype=self.A.dtype)
        n = d * d + d + 1
        M = jnp.zeros((n, n), self.A.dtype)
        M = M.at[: d * d, : d * d].set(jnp.kron(eye, self.A) + jnp.kron(self.A, eye))
        M = M.at[: d * d, -1].set(2 * self.T * eye.ravel(order="F"))
        M = M.at[d * d: d * d + d, d * d: d * d + d].set(self.A)
        M = M.at[d * d: d * d + d, -1].set(self.b)
        y0 = jnp.concatenate([self.cov0.ravel(order="F"), self.mean0, jnp.ones(1, self.A.dtype)])
        y = jax.scipy.linalg.expm(M * t) @ y0
        cov = y[: d * d].reshape(d, d, order="F")
        return y[d * d: d * d + d], 0.5 * (cov + cov.T)


class GaussianGeodesic(_GaussianProcess):
    r"""Constant-temperature process along the $W_2$ geodesic between isotropic Gaussians.

    $P_t = \mathcal N(\mu_t, s_t^2 I)$ with $\mu_t, s_t$ linear in ``t`` from
    ``(mean0, std0)`` at 0 to ``(mean1, std1)`` at ``tau``: constant speed
    $v_2 = W_2(P_0, P_\tau)/\tau$ (Eqs. 69–70). It is driven by the conservative force
    $f_t(x) = \dot\mu + (\dot s/s - T/s^2)(x - \mu_t)$ at temperature ``T``, so that
    $\nu_t = \dot\mu + (\dot s/s)(x-\mu_t)$ and Eq. 68 holds with equality.
    """

    mean0: jax.Array
    mean1: jax.Array
    std0: jax.Array
    std1: jax.Array
    T: jax.Array
    tau: jax.Array

    def __init__(self, mean0, std0, mean1, std1, T, tau=1.0):
        self.mean0, self.mean1 = as_float(mean0), as_float(mean1)
        if self.mean0.ndim != 1 or self.mean1.shape != self.mean0.shape:
            raise ValueError("GaussianGeodesic: `mean0`, `mean1` must both have shape (d,).")
        self.std0 = check(as_float(std0) > 0, "GaussianGeodesic: `std0` must be > 0.", as_float(std0))
        self.std1 = check(as_float(std1) > 0, "GaussianGeodesic: `std1` must be > 0.", as_float(std1))
        self.T = check(as_float(T) > 0, "GaussianGeodesic: temperature `T` must be > 0.", as_float(T))
        self.tau = check(as_float(tau) > 0, "GaussianGeodesic: `tau` must be > 0.", as_float(tau))

    def temperature(self, t):
        return self.T * jnp.ones_like(as_float(t))

    def _ms(self, t):
        s = t / self.tau
        return self.mean0 + s * (self.mean1 - self.mean0), self.std0 + s * (self.std1 - self.std0)

    @_jit_method
    def moments(self, t):
        mu, sd = self._ms(t)
        return mu, sd**2 * jnp.eye(self.dim, dtype=mu.dtype)

    def linear_force(self, t):
        mu, sd = self._ms(t)
        a = (self.std1 - self.std0) / self.tau / sd - self.T / sd**2
        A = a * jnp.eye(self.dim, dtype=mu.dtype)
        return A, (self.mean1 - self.mean0) / self.tau - a * mu


class DiffusionProcess(_Process):
    r"""The forward Langevin process of a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath] ([spec §3][spec-3], Eqs. 22–23, 96).

    Force $f_t(x) = (\partial_t\ln m_t)x$, temperature $T_t$ of the schedule;
    marginals and velocity in closed form from the path. Points are ``(d,)`` (``(1,)`` for 1D
    data). The force is conservative, so ``grad_potential`` is the velocity itself and
    $T\dot S^{tot} = v_2^2$ (quadrature of [`jaxsa.thermo.dissipation.v2_sq`][jaxsa.thermo.dissipation.v2_sq]; 1D only).
    """

    path: DiffusionPath

    @property
    def dim(self) -> int:
        return self.path.data.dim

    @property
    def tau(self):
        return self.path.tau

    def _in(self, x):
        return x[..., 0] if self.path.data.means.ndim == 1 else x

    def _out(self, y):
        return y[..., None] if self.path.data.means.ndim == 1 else y

    def force(self, t, x):
        return self.path.schedule.force(t, x)

    def div_force(self, t, x):
        return self.dim * self.path.schedule.drift_rate(t)

    def temperature(self, t):
        return self.path.schedule.temperature(t)

    @_jit_method
    def velocity(self, t, x):
        return self._out(self.path.velocity(t, self._in(x)))

    @_jit_method
    def log_density(self, t, x):
        return self.path.log_density(t, self._in(x))

    @_jit_method
    def T_entropy_rate(self, t):
        return self.path.v2_sq(t)

    @_jit_method
    def v2_sq(self, t):
        return self.T_entropy_rate(t)

    def sample(self, key, t, n: int):
        return jnp.reshape(self.path.marginal(t).sample(key, (n,)), (n, self.dim))

    def quadrature(self, t, n: int = 64):
        """Gauss–Hermite nodes per mixture component ``(K*n, 1)`` and weights (1D)."""
        if self.path.data.means.ndim != 1:
            raise ValueError("DiffusionProcess.quadrature: implemented for 1D data only.")
        z, w = np.polynomial.hermite_e.hermegauss(n)
        marg = self.path.marginal(t)
        x = marg.means[:, None] + marg.scales[:, None] * jnp.asarray(z)[None, :]
        W = marg.weights[:, None] * jnp.asarray(w / math.sqrt(2 * math.pi))[None, :]
        return x.reshape(-1, 1), W.ravel()

    @_jit_method
    def w2(self, t0, t1, n_quantiles: int = 4096, z_max: float = 8.5):
        """$W_2(P_{t_0}, P_{t_1})$ by the 1D quantile formula (Eq. 52)."""
        from jaxsa.quadrature import quantile_nodes

        z, w = quantile_nodes(n_quantiles, z_max)
        q0 = self.path.normal_score_quantile(t0, jnp.asarray(z))
        q1 = self.path.normal_score_quantile(t1, jnp.asarray(z))
        return jnp.sqrt(jnp.sum(jnp.asarray(w) * (q0 - q1) ** 2))


def as_process(process):
    """The process of this module for ``process``: a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath] is wrapped
    as a [`DiffusionProcess`][jaxsa.processes.langevin.DiffusionProcess]; a process of this module is returned as it is.

    Raises ``ValueError`` for anything else."""
    if isinstance(process, DiffusionPath):
        return DiffusionProcess(process)
    if not isinstance(process, _Process):
        raise ValueError("`process` must be an OrnsteinUhlenbeck, GaussianGeodesic, DiffusionProcess "
                         f"or DiffusionPath; got {type(process).__name__}.")
    return process


@eqx.filter_jit
def _temperatures(process, ts):
    return jax.vmap(process.temperature)(ts)


def check_window(process, t0, t1, n_check: int = 33):
    """Raise ``ValueError`` unless ``t1 > t0`` and the temperature $T_t$ of ``process`` is
    finite and > 0 at ``n_check`` equally spaced times of ``[t0, t1]`` (concrete scalars,
    unit of time), where the entropy production rate is finite."""
    if not float(t1) > float(t0):
        raise ValueError(f"`t1` must be > `t0`; got t0={float(t0)}, t1={float(t1)}.")
    T = np.asarray(_temperatures(process, jnp.linspace(as_float(t0), as_float(t1), n_check)))
    if not (np.all(T > 0) and np.all(np.isfinite(T))):
        raise ValueError("the temperature must be finite and > 0 on [t0, t1] (the entropy "
                         "production diverges where T_t = 0 or m_t = 0); choose a window inside "
                         f"the process, got min T = {T.min():.3g}, max T = {T.max():.3g}.")
