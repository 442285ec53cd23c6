"""`jaxsa.quadrature`'s extremum helpers against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsa


def test_parabolic_vertex_exact_on_a_parabola():
    """Three points of g(t) = 2 - 3 (t - 0.37)²: the vertex (0.37, 2) to round-off; a convex
    triple (not a maximum) and coincident abscissae give the best of the three points."""
    T = jnp.array([0.1, 0.3, 0.8])
    x, v = jaxsa.parabolic_vertex(T, 2.0 - 3.0 * (T - 0.37) ** 2)
    assert float(x) == pytest.approx(0.37, abs=1e-14) and float(v) == pytest.approx(2.0, abs=1e-14)
    x, v = jaxsa.parabolic_vertex(T, (T - 0.37) ** 2)
    assert (float(x), float(v)) == (0.8, pytest.approx(float((0.8 - 0.37) ** 2)))
    x, v = jaxsa.parabolic_vertex(jnp.array([0.1, 0.1, 0.8]), jnp.array([1.0, 2.0, 0.5]))
    assert (float(x), float(v)) == (0.1, 2.0)


def test_sampled_maximum_estimate_bounds_the_error():
    """max of sin(5t) + 0.3 cos(11t) on [0, 1] (interior, between the samples; reference: a
    dense grid refined by Newton on the derivative): within the estimate at every spacing, and
    the estimate falls with the spacing; a maximum at an end (a decreasing convex function) is
    that sample with estimate 0; rows batch under jit."""
    f = lambda t: np.sin(5 * t) + 0.3 * np.cos(11 * t)  # noqa: E731
    t = np.linspace(0.0, 1.0, 200001)
    s = t[np.argmax(f(t))]
    for _ in range(20):  # Newton on f'(s) = 0
        s -= (5 * np.cos(5 * s) - 3.3 * np.sin(11 * s)) / (-25 * np.sin(5 * s) - 36.3 * np.cos(11 * s))
    true_max = f(s)
    est, err = [], []
    for n in (9, 17, 33, 65, 129):
        ts = jnp.linspace(0.0, 1.0, n)
        m, e = jaxsa.sampled_maximum(ts, jnp.asarray(f(np.asarray(ts))))
        assert abs(true_max - float(m)) <= float(e), n
        est.append(float(e))
        err.append(abs(true_max - float(m)))
    assert est[-1] < 1e-3 * est[0] and err[-1] < 1e-5
    ts = jnp.linspace(0.0, 1.0, 17)
    m, e = jaxsa.sampled_maximum(ts, jnp.exp(-ts))
    assert (float(m), float(e)) == (1.0, 0.0)
    rows = jnp.stack([jnp.asarray(f(np.asarray(ts))), jnp.exp(-ts)])
    mb, eb = jax.jit(jaxsa.sampled_maximum)(ts, rows)
    assert mb.shape == eb.shape == (2,) and float(mb[1]) == 1.0


def test_sampled_maximum_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="`t` must be 1D with n >= 5"):
        jaxsa.sampled_maximum(jnp.linspace(0.0, 1.0, 4), jnp.zeros(4))
    with pytest.raises(ValueError, match="`g` of shape"):
        jaxsa.sampled_maximum(jnp.linspace(0.0, 1.0, 6), jnp.zeros((2, 5)))
