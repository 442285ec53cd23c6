"""The velocity-field protocol: every field implements it, and solvers need nothing else."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsa
from jaxsa.processes import AbstractForwardProcess, AbstractVelocityField, velocity_field


def test_every_field_implements_the_protocol():
    data = jaxsa.paper_data()
    fields = [
        (jaxsa.DiffusionPath(jaxsa.Cosine(1.0), data), ()),
        (jaxsa.OTPath(data, jaxsa.gaussian(0.0, 1.0)), ()),
        (jaxsa.EmpiricalPath(jaxsa.CondOT(1.0), np.zeros((3, 2))), (2,)),
        (jaxsa.GaussianGeodesic([0.0], 1.0, [1.0], 2.0, 0.5), (1,)),
        (jaxsa.OrnsteinUhlenbeck([[-1.0]], 0.5, [0.0], [[1.0]]), (1,)),
    ]
    for f, shape in fields:
        assert isinstance(f, AbstractVelocityField), type(f)
        assert f.event_shape == shape, (type(f), f.event_shape)
        x = jnp.zeros((4,) + shape)
        assert f.velocity(0.5 * f.tau, x).shape == x.shape, type(f)  # batch + event shape
    for f, _ in fields[:3]:
        assert isinstance(f, AbstractForwardProcess)


def test_abstract_classes_refuse_instantiation():
    with pytest.raises(TypeError):
        AbstractVelocityField()

    class NoVelocity(AbstractVelocityField):
        tau: jax.Array
        event_shape = ()

    with pytest.raises(TypeError):
        NoVelocity(jnp.asarray(1.0))


def test_user_callable_is_transported_like_its_closed_form():
    # ν_t(x) = -a x: the flow from τ is x_t = x_τ e^{a(τ - t)}, with log-Jacobian a(τ - t)
    a, tau = 0.7, 1.3
    field = velocity_field(lambda t, x: -a * x, tau)
    x_tau = jnp.linspace(-2.0, 2.0, 7)
    ts = jnp.linspace(tau, 0.0, 5)
    x, v, lj, stats = jaxsa.transport(field, x_tau, ts)
    exact = np.asarray(x_tau)[None] * np.exp(a * (tau - np.asarray(ts)))[:, None]
    np.testing.assert_allclose(x, exact, rtol=1e-7, atol=1e-12)  # Dopri8 at rtol 1e-10, global error
    np.testing.assert_allclose(v, -a * exact, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(lj, np.broadcast_to(a * (tau - np.asarray(ts))[:, None], lj.shape), atol=1e-7)
    assert bool(stats["success"])


def test_divergence_in_d_dimensions_is_the_jacobian_trace():
    A = jnp.asarray([[0.3, -1.0, 0.0], [1.0, 0.2, 0.5], [0.0, 0.1, -0.4]])
    field = velocity_field(lambda t, x: jnp.sin(t) * x @ A.T, 1.0, (3,))
    x = jax.random.normal(jax.random.key(0), (4, 2, 3))
    v, div = field.velocity_and_divergence(0.8, x)
    assert v.shape == x.shape and div.shape == (4, 2)
    np.testing.assert_allclose(div, np.full((4, 2), np.sin(0.8) * float(jnp.trace(A))), rtol=1e-12)


def test_ends_at_noise_collapses_to_one_exact_component():
    data = jaxsa.GaussianMixture([0.3, 0.7], [-1.0, 2.0], [0.1, 0.4])
    for sched in (jaxsa.Cosine(1.0), jaxsa.CondOT(2.0), jaxsa.Interpolated(0.3)):
        path = jaxsa.DiffusionPath(sched, data)
        one, full = path.end_marginal(), path.marginal(path.tau)
        assert one.weights.shape == (1,)
        x = jnp.linspace(-5.0, 5.0, 11)
        np.testing.assert_allclose(one.log_density(x), full.log_density(x), rtol=1e-12)
    vp = jaxsa.DiffusionPath(jaxsa.VPLinear(0.1, 20.0, 1.0), data)
    assert vp.end_marginal().weights.shape == (2,)  # m_τ > 0: no collapse


def test_ot_marginal_is_a_density_with_matching_cdf_and_quantiles():
    path = jaxsa.OTPath(jaxsa.GaussianMixture([0.5, 0.5], [-1.0, 1.5], [0.2, 0.5]), jaxsa.gaussian(0.0, 1.0))
    m = path.marginal(0.4)
    z = jnp.linspace(-3.0, 3.0, 9)
    x = m.normal_score_quantile(z)
    np.testing.assert_allclose(m.cdf(x), jax.scipy.stats.norm.cdf(z), rtol=1e-9)
    # the density integrates to one (trapezoid on a fine grid)
    xs = np.linspace(-6, 6, 20001)
    p = np.exp(np.asarray(m.log_density(jnp.asarray(xs))))
    assert abs(np.trapezoid(p, xs) - 1.0) < 1e-6
    assert path.end_marginal() is path.prior


def test_velocity_field_refuses_bad_input_by_name():
    with pytest.raises(ValueError, match=r"`fn\(t, x\)` must return the shape"):
        velocity_field(lambda t, x: x.sum(-1), 1.0, (3,))
    with pytest.raises(ValueError, match="`tau`"):
        velocity_field(lambda t, x: -x, 0.0)
    with pytest.raises(ValueError, match="`fn` must be callable"):
        velocity_field(3.0, 1.0)
