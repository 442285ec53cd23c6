r"""The protocol every velocity field and forward process implements ([spec §2][spec-2], [§4][spec-4]).

Everything that integrates, transports or audits a field in jaxsa types against these two
abstract modules and calls their methods; nothing dispatches on a concrete class.

* [`AbstractVelocityField`][jaxsa.processes.base.AbstractVelocityField]: a time horizon
  $\tau$ and a velocity $\nu_t(x)$ on $[0, \tau]\times\mathbb R^d$ (length/time), with an
  optional exact flow.
* [`AbstractForwardProcess`][jaxsa.processes.base.AbstractForwardProcess]: a field whose
  marginals $P_t$ are known (closed form, empirical data, a grid), so that the flow can be
  compared with the process it transports.

**Shape convention**, once for all fields: a point is an array of shape ``event_shape``
(``()`` for a scalar 1D field, ``(d,)`` in $d$ dimensions); ``velocity(t, x)`` takes a scalar
time ``t`` and ``x`` of shape ``batch + event_shape`` for any ``batch`` and returns an array of
the same shape and dtype.

A plain function ``(t, x) -> v`` becomes a field in one line with
[`velocity_field`][jaxsa.processes.base.velocity_field].
"""

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["AbstractVelocityField", "AbstractForwardProcess", "VelocityFunction", "velocity_field"]


class AbstractVelocityField(eqx.Module):
    r"""A velocity field $\nu_t(x)$ on $[0, \tau]$ (forward time, length/time).

    Subclasses define ``tau``, ``event_shape`` and ``velocity``; ``exact_flow`` and
    ``velocity_and_divergence`` have generic defaults. A worked subclass, the linear field
    $\nu_t(x) = -x$ whose flow is $x_t = x_\tau e^{\tau - t}$:

    ```python
    class Contraction(AbstractVelocityField):
        tau: jax.Array
        event_shape = ()  # scalar 1D points

        def velocity(self, t, x):
            return -x

        def exact_flow(self, x_tau, ts):
            x = x_tau * jnp.exp(self.tau - jnp.asarray(ts))[:, None]
            return x, -x, jnp.broadcast_to((self.tau - ts)[:, None], x.shape)
    ```
    """

    tau: eqx.AbstractVar[jax.Array]
    #: True for a field whose every trajectory is a straight line at constant speed (the
    #: $W_2$ geodesic, Eq. 91): then $W_1(P_t, \tilde P_t)$ is linear in $t$ and $v_2$ constant.
    is_geodesic: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def event_shape(self) -> tuple:
        """Shape of one point: ``()`` for scalar 1D points, ``(d,)`` in $d$ dimensions."""

    @abc.abstractmethod
    def velocity(self, t, x):
        r"""$\nu_t(x)$ (length/time) for a scalar ``t`` and ``x`` of shape ``batch + event_shape``;
        the result has the shape and dtype of ``x``."""

    def exact_flow(self, x_tau, ts):
        r"""The flow from $t = \tau$ to each time in ``ts`` in closed form, or ``None``.

        Returns ``(x, v, log_jac)``, each of shape ``(len(ts),) + x_tau.shape`` (1D): the
        positions $x_t$, velocities $\nu_t(x_t)$ and $\ln\partial x_t/\partial x_\tau$; ``None``
        (the default) when the flow must be integrated.
        """
        return None

    def singular_at_zero(self) -> bool:
        """Whether $\nu_t$ is singular at ``t = 0`` (data with point masses): flows then stop
        at a small ``t_min > 0``. Static (a Python bool); default ``False``."""
        return False

    def checked(self):
        """This field with its parameters' value checks attached (under ``jit`` they act at
        run time); the default has none to check."""
        return self

    def velocity_and_divergence(self, t, x):
        r"""$(\nu_t(x), \nabla\!\cdot\nu_t(x))$ at ``x`` of shape ``batch + event_shape``:
        for scalar 1D points by one forward-mode derivative (points are independent), in
        $d$ dimensions by the trace of each point's Jacobian (shape ``batch``)."""
        x = jnp.asarray(x)
        if self.event_shape == ():
            return jax.jvp(lambda y: self.velocity(t, y), (x,), (jnp.ones_like(x),))
        flat = x.reshape((-1,) + tuple(self.event_shape))
        jacobian = jax.vmap(jax.jacfwd(lambda p: self.velocity(t, p[None])[0]))(flat)
        div = jnp.trace(jacobian, axis1=-2, axis2=-1)
        return self.velocity(t, x), div.reshape(x.shape[: x.ndim - len(self.event_shape)])


class AbstractForwardProcess(AbstractVelocityField):
    r"""A forward process: a velocity field together with the marginals $P_t$ it transports
    (continuity equation $\partial_t P_t = -\nabla\cdot(\nu_t P_t)$, Eq. 1).

    Subclasses add ``marginal``; ``end_marginal`` defaults to ``marginal(tau)``.
    """

    @abc.abstractmethod
    def marginal(self, t):
        r"""$P_t$ as a density object (with ``log_density``; in 1D also ``cdf`` and quantiles)."""

    def end_marginal(self):
        r"""$P_\tau$, the density the estimated process is compared against (the prior)."""
        return self.marginal(self.tau)


class VelocityFunction(AbstractVelocityField):
    """A plain function ``(t, x) -> v`` as a velocity field (see
    [`velocity_field`][jaxsa.processes.base.velocity_field])."""

    fn: Callable = eqx.field(static=True)
    tau: jax.Array
    shape: tuple = eqx.field(static=True, default=())

    @property
    def event_shape(self):
        return self.shape

    def velocity(self, t, x):
        return self.fn(t, x)


def velocity_field(fn: Callable, tau, event_shape: tuple = ()) -> VelocityFunction:
    r"""Wrap a function ``fn(t, x) -> v`` (a user's network, a closed form) as an
    [`AbstractVelocityField`][jaxsa.processes.base.AbstractVelocityField] on $[0, \tau]$.

    ``event_shape``: the shape of one point, ``()`` for scalar 1D points (default) or
    ``(d,)``. ``fn`` must accept ``x`` of shape ``batch + event_shape`` and return the same
    shape; this is checked here by tracing ``fn`` once on a batch of two points
    (``jax.eval_shape``: nothing is computed), as is ``tau > 0``.

    Raises:
        ValueError: ``fn`` is not callable, ``tau`` is not a finite positive number, or
            ``fn`` returns another shape than its input.

    ```python
    field = jaxsa.velocity_field(lambda t, x: -x, tau=1.0)
    ```
    """
    if not callable(fn):
        raise ValueError(f"velocity_field: `fn` must be callable (t, x) -> v, got {type(fn).__name__}.")
    tau = jnp.asarray(tau, dtype=jnp.result_type(float))
    if tau.ndim != 0 or not bool(jnp.isfinite(tau) & (tau > 0)):
        raise ValueError(f"velocity_field: `tau` must be a finite scalar > 0, got {tau}.")
    shape = tuple(int(n) for n in event_shape)
    probe = jax.ShapeDtypeStruct((2,) + shape, tau.dtype)
    out = jax.eval_shape(fn, jax.ShapeDtypeStruct((), tau.dtype), probe)
    if getattr(out, "shape", None) != probe.shape:
        raise ValueError(f"velocity_field: `fn(t, x)` must return the shape of `x` (batch + "
                         f"event_shape {shape}); for x of shape {probe.shape} it returned "
                         f"{getattr(out, 'shape', type(out).__name__)}.")
    return VelocityFunction(fn=fn, tau=tau, shape=shape)
