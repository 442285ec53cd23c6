r"""The exact 1D optimal-transport schedule ([spec §5][spec-5], Eqs. 69–70, 91).

With the monotone map $\mathcal T = F_{P_\tau}^{-1}\circ F_q$ from the data $q$ to
the end density $P_\tau$, the forward process is the displacement interpolation

$$
x_t = (1 - t/\tau)\, x_0 + (t/\tau)\, \mathcal T(x_0), \qquad
\nu_t(x_t) = (\mathcal T(x_0) - x_0)/\tau,
$$

the $W_2$ geodesic at constant speed $v_2 = W_2(q, P_\tau)/\tau$, driven by a
conservative (gradient) velocity. Its density is
$P_t(x_t) = [(1-s)/q(x_0) + s/P_\tau(\mathcal T(x_0))]^{-1}$, ``s = t/τ``.

Every trajectory of this velocity field is a straight line, so the estimated process (which
follows the same field from any start) is exact too: a particle at ``w`` at time τ sits at
$(1-s)\,\mathcal T^{-1}(w) + s\,w$ at time ``t``. [`OTPath.exact_flow`][jaxsa.processes.ot.OTPath.exact_flow] uses that, while
[`OTPath.velocity`][jaxsa.processes.ot.OTPath.velocity] (the field at an arbitrary point, by monotone bisection) lets the
generic ODE path be checked against it.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsa.densities import GaussianMixture
from jaxsa.processes.base import AbstractForwardProcess

__all__ = ["OTPath"]


class OTPath(AbstractForwardProcess):
    r"""Exact OT forward process in 1D from ``data`` $q$ to ``prior`` $P_\tau$.

    Args:
        data: 1D [`GaussianMixture`][jaxsa.densities.GaussianMixture] $q$.
        prior: 1D density $P_\tau$ with ``normal_score``/``normal_score_quantile``
            (a [`GaussianMixture`][jaxsa.densities.GaussianMixture]; the paper uses N(0, 1)).
        tau: duration τ > 0.
    """

    data: GaussianMixture
    prior: GaussianMixture
    tau: jax.Array

    def __init__(self, data, prior, tau=1.0):
        if data.means.ndim != 1 or prior.means.ndim != 1:
            raise ValueError("OTPath: `data` and `prior` must be 1D densities (means of shape (K,)).")
        self.data, self.prior = data, prior
        self.tau = jnp.asarray(tau, dtype=jnp.result_type(float))

    # ---- the monotone map ------------------------------------------------------------
    def transport_map(self, x0):
        r"""$\mathcal T(x_0) = F_{P_\tau}^{-1}(F_q(x_0))$, shape of ``x0``."""
        return self.prior.normal_score_quantile(self.data.normal_score(x0))

    def inverse_map(self, w):
        r"""$\mathcal T^{-1}(w) = F_q^{-1}(F_{P_\tau}(w))$."""
        return self.data.normal_score_quantile(self.prior.normal_score(w))

    def positions(self, t, z):
        """Position at time ``t`` of the particle with normal score ``z`` (its level Φ(z))."""
        s = t / self.tau
        return (1 - s) * self.data.normal_score_quantile(z) + s * self.prior.normal_score_quantile(z)

    # ---- field at an arbitrary point -----------------------------------------------------
    def origin(self, t, x):
        """$x_0$ with $x_t(x_0) = x$, by bisection (``x_t`` is increasing in $x_0$)."""
        s = t / self.tau
        x = jnp.asarray(x, dtype=self.tau.dtype)
        # x_t is increasing in x_0; the data's quantiles at normal scores ±37 bound every
        # representable point (points beyond carry no float64 mass and are clipped to them).
        lo = jnp.broadcast_to(self.data.normal_score_quantile(-37.0), x.shape)
        hi = jnp.broadcast_to(self.data.normal_score_quantile(37.0), x.shape)

        def xt(x0):
            return (1 - s) * x0 + s * self.transport_map(x0)

        def body(_, b):
            a, c = b
            mid = 0.5 * (a + c)
            above = xt(mid) > x
            return jnp.where(above, a, mid), jnp.where(above, mid, c)

        a, c = jax.lax.fori_loop(0, 120, body, (jax.lax.stop_gradient(lo), jax.lax.stop_gradient(hi)))
        # Bisection has no tangent. One Newton step from its (stop-gradient) root restores the
        # implicit-function derivatives dx0/dx = 1/x_t'(x0), dx0/dt = -∂_t x_t / x_t'(x0) while
        # leaving the value unchanged to round-off.
        x0 = jax.lax.stop_gradient(0.5 * (a + c))
        f, slope = jax.jvp(xt, (x0,), (jnp.ones_like(x0),))
        return x0 - (f - x) / jax.lax.stop_gradient(slope)

    def velocity(self, t, x):
        r"""$\nu_t(x)$ (length/time) at arbitrary points, shape of ``x``."""
        x0 = self.origin(t, x)
        return (self.transport_map(x0) - x0) / self.tau

    def log_density(self, t, x):
        r"""$\ln P_t(x)$ from the displacement interpolation."""
        s = t / self.tau
        x0 = self.origin(t, x)
        lq = self.data.log_density(x0)
        lp = self.prior.log_density(self.transport_map(x0))
        return -jnp.logaddexp(jnp.log1p(-s) - lq, jnp.log(s) - lp)

    def density(self, t, x):
        return jnp.exp(self.log_density(t, x))

    # ---- the protocol ------------------------------------------------------------------
    #: every trajectory is a straight line at constant speed (the $W_2$ geodesic, Eq. 91)
    is_geodesic = True

    @property
    def event_shape(self) -> tuple:
        return ()

    def marginal(self, t) -> "DisplacementMarginal":
        """$P_t$, the displacement interpolation at time ``t`` (a density object)."""
        return DisplacementMarginal(self, jnp.asarray(t, self.tau.dtype))

    def end_marginal(self) -> GaussianMixture:
        r"""$P_\tau$: the prior itself."""
        return self.prior

    def checked(self) -> "OTPath":
        """This path with ``tau > 0`` checked (under ``jit`` at run time)."""
        from jaxsa._checks import check

        return eqx.tree_at(lambda p: p.tau, self, check(self.tau > 0, "OTPath: `tau` must be > 0.", self.tau))

    # ---- exact flow of the velocity field ------------------------------------------------
    def exact_flow(self, x_tau, ts):
        r"""Exact flow from time τ back to each time in ``ts`` of particles at ``x_tau``.

        Returns ``(x, v, log_jac)`` of shape ``(len(ts),) + x_tau.shape``: positions,
        velocities $\nu_t(x_t)$ and $\ln \partial x_t/\partial x_\tau$.
        """
        x0 = self.inverse_map(x_tau)
        s = (jnp.asarray(ts) / self.tau)[:, None]
        x = (1 - s) * x0[None] + s * x_tau[None]
        v = jnp.broadcast_to((x_tau - x0) / self.tau, x.shape)
        # dx0/dw = P_tau(w) / q(x0)
        log_dx0 = self.prior.log_density(x_tau) - self.data.log_density(x0)
        log_jac = jnp.logaddexp(jnp.log1p(-s) + log_dx0[None], jnp.log(s))
        return x, v, log_jac


class DisplacementMarginal(eqx.Module):
    r"""$P_t$ of an [`OTPath`][jaxsa.processes.ot.OTPath] at one time ``t``: the push-forward of
    $q$ by $x_0 \mapsto (1 - s)x_0 + s\mathcal T(x_0)$, ``s = t/τ`` (monotone, so its
    quantiles and CDF are those of $q$ carried along)."""

    path: OTPath
    t: jax.Array

    def log_density(self, x):
        return self.path.log_density(self.t, x)

    def cdf(self, x):
        return self.path.data.cdf(self.path.origin(self.t, x))

    def normal_score(self, x):
        return self.path.data.normal_score(self.path.origin(self.t, x))

    def normal_score_quantile(self, z):
        return self.path.positions(self.t, z)
