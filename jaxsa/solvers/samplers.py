r"""Fixed-budget samplers of the probability-flow ODE on a given time grid ([spec §4][spec-4]).

The estimated process follows $dx/dt = \nu_t(x)$ backwards from $t = \tau$ (noise) to the
data end (Eqs. 10–11, 14–15). [`sample`][jaxsa.solvers.samplers.sample] integrates it on a
grid $t_0 > t_1 > \dots > t_N$ (e.g. from [`step_grid`][jaxsa.solvers.steps.step_grid]) with
a fixed number of velocity evaluations, $h_n = t_{n+1} - t_n < 0$, $f_n = \nu_{t_n}(x_n)$:

| method | update | evaluations | order |
|---|---|---|---|
| ``"euler"`` | $x_{n+1} = x_n + h_n f_n$ | $N$ | 1 |
| ``"heun"`` | $\tilde x = x_n + h_n f_n$, $x_{n+1} = x_n + \tfrac{h_n}{2}(f_n + \nu_{t_{n+1}}(\tilde x))$ | $2N$ | 2 |
| ``"dpm2"`` | $x_{n+1} = x_n + h_n[(1 + \tfrac{r_n}{2}) f_n - \tfrac{r_n}{2} f_{n-1}]$, $r_n = h_n/h_{n-1}$ | $N$ | 2 |

Heun is the explicit trapezoidal rule (the sampler of Karras et al. 2022, Algorithm 1).
``"dpm2"`` is a two-step Adams–Bashforth method in $t$ for variable steps: it extrapolates the
velocity linearly through the previous evaluation, the multistep idea of DPM-Solver++(2M)
(Lu et al. 2022) applied to $\nu$ in $t$ rather than to the data prediction in log-SNR; its
first step is Euler (which keeps the global order 2: one local error $O(h^2)$).

Everything is pure JAX: ``sample`` works under ``jax.jit`` (``method`` static) and under
``jax.vmap`` over grids of one length, over starting points, or both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsa._checks import promoted_dtype

__all__ = ["SAMPLER_METHODS", "sample"]

#: the methods of [`sample`][jaxsa.solvers.samplers.sample] and their velocity evaluations per step
SAMPLER_METHODS = {"euler": 1, "heun": 2, "dpm2": 1}


def sample(field, x_tau, grid, method: str = "heun", *, euler_last: bool | None = None):
    r"""Integrate $dx/dt = \nu_t(x)$ from ``grid[0]`` to ``grid[-1]``; return the end positions.

    Args:
        field: an [`AbstractVelocityField`][jaxsa.processes.base.AbstractVelocityField] (its
            ``velocity(t, x)`` is called with a scalar ``t``), or a function ``(t, x) -> v``.
        x_tau: starting positions at ``grid[0]``, shape ``batch + event_shape`` (length units).
        grid: times of shape ``(N + 1,)``, ``N >= 1``, monotone (decreasing from noise to data
            for a sampler; an increasing grid runs the flow forward). Units of $\tau$.
        method: ``"euler"``, ``"heun"`` or ``"dpm2"`` (see the module table; static).
        euler_last: ``"heun"`` only: take the last step by Euler, which evaluates no velocity at
            ``grid[-1]``; needed where $\nu_t$ is singular at the end (data with point masses
            when ``grid[-1] = 0``). Default: ``field.singular_at_zero()`` when the field has
            it, else ``False``. One Euler step's local error $O(h^2)$ keeps the order 2.

    Returns:
        Positions at ``grid[-1]``, the shape and dtype of ``x_tau``. ``N`` (Euler, dpm2) or
        ``2N`` (Heun; ``2N - 1`` with ``euler_last``) velocity evaluations.

    Raises:
        ValueError: unknown ``method``; ``grid`` not one-dimensional with at least 2 times.

    Example:
        ```python
        grid = jaxsa.step_grid(path, 16, "edm")
        x0 = jax.jit(jaxsa.sample, static_argnames="method")(path, x_tau, grid, "heun")
        many = jax.vmap(lambda g: jaxsa.sample(path, x_tau, g, "dpm2"))(grids)  # (G,) + x.shape
        ```
    """
    if not isinstance(method, str) or method not in SAMPLER_METHODS:
        raise ValueError(f"sample: unknown `method` {method!r}; choose one of "
                         f"{sorted(SAMPLER_METHODS)}.")
    grid = jnp.asarray(grid)
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(f"sample: `grid` must be one-dimensional with at least 2 times "
                         f"(n_steps + 1); got shape {grid.shape}.")
    velocity = getattr(field, "velocity", None)
    if velocity is None:
        if not callable(field):
            raise ValueError(f"sample: `field` must be a velocity field or a function (t, x) -> v; "
                             f"got {type(field).__name__}.")
        velocity = field
    x = jnp.asarray(x_tau)
    dtype = promoted_dtype(x.dtype, grid.dtype, float)  # a float32 x with a float64 grid: float64
    x, grid = x.astype(dtype), grid.astype(dtype)
    t0, t1 = grid[:-1], grid[1:]
    h = t1 - t0

    if method == "euler":
        def step(x, th):
            t, h = th
            return x + h * velocity(t, x), None

        x, _ = jax.lax.scan(step, x, (t0, h))
        return x

    if method == "heun":
        if euler_last is None:
            singular = getattr(field, "singular_at_zero", None)
            euler_last = bool(singular()) if callable(singular) else False

        def heun(x, th):
            t, s, h = th
            f = velocity(t, x)
            g = velocity(s, x + h * f)
            return x + 0.5 * h * (f + g), None

        n_heun = grid.shape[0] - 1 - (1 if euler_last else 0)
        x, _ = jax.lax.scan(heun, x, (t0[:n_heun], t1[:n_heun], h[:n_heun]))
        if euler_last:
            x = x + h[-1] * velocity(t0[-1], x)
        return x

    # "dpm2": variable-step Adams-Bashforth 2, the first step Euler
    f0 = velocity(t0[0], x)
    x = x + h[0] * f0

    def ab2(carry, th):
        x, f_prev, h_prev = carry
        t, h = th
        f = velocity(t, x)
        r = h / h_prev
        x = x + h * ((1.0 + 0.5 * r) * f - 0.5 * r * f_prev)
        return (x, f, h), None

    (x, _, _), _ = jax.lax.scan(ab2, (x, f0, h[0]), (t0[1:], h[1:]))
    return x
