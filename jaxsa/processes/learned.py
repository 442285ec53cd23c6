r"""Conditional flow matching ([spec §5][spec-5]; Lipman et al. 2023, Tong et al. 2024), in flax + optax + ott-jax.

Time runs as in the rest of jaxsa: the data $q$ sits at ``t = 0`` and the end density
$P_\tau$ (noise) at ``t = τ``. Each step draws ``x0 ~ q``, ``x1 ~ P_τ`` (``B`` points each),
``s ~ U(0, 1)``, ``t = s τ``, a point $x_t$ of a conditional path and its velocity
$\dot x_t$, and regresses the network on it (Lipman et al. 2023, *Flow matching for
generative modeling*, ICLR):

$$
\mathcal L(\theta) = \mathbb E\,\big\| u_\theta(t, x_t) - \dot x_t \big\|^2 ,
$$

whose minimiser is the marginal velocity $\nu_t(x) = \mathbb E[\dot x_t \mid x_t = x]$, the
field that transports the path's marginals $P_t$. The paths (``CFMSettings.path``):

* ``"ot"`` (OT-CFM; Tong et al. 2024, *Improving and generalizing flow-based generative models
  with minibatch optimal transport*, TMLR): the minibatch is coupled by an entropic OT plan
  $\pi$ for the squared Euclidean cost (ott-jax Sinkhorn, ε relative to the mean cost), ``B``
  pairs $(x_0, x_1) \sim \pi$ are drawn, $x_t = (1 - s)x_0 + s x_1$, $\dot x_t = (x_1 - x_0)/\tau$.
  As ``B → ∞`` and ε → 0 the minimiser is the velocity of the displacement interpolation, the
  $W_2$ geodesic of [spec §5][spec-5]: $\nu_t(x_t) = (\mathcal T(x_0) - x_0)/\tau$.
* ``"cond-ot"``, ``"cosine"``, ``"vp"``: independent pairs and the schedule's conditional path
  $x_t = m_t x_0 + \sigma_t x_1$, $\dot x_t = \dot m_t x_0 + \dot\sigma_t x_1$, with
  $(m_t, \sigma_t)$ of [`CondOT`][jaxsa.schedules.standard.CondOT] ($1 - t/\tau$, $t/\tau$),
  [`Cosine`][jaxsa.schedules.standard.Cosine] ($\cos\frac{\pi t}{2\tau}$, $\sin\frac{\pi t}{2\tau}$)
  and [`VPLinear`][jaxsa.schedules.standard.VPLinear] (default $\beta$'s), evaluated by those
  objects. With $P_\tau = \mathcal N(0, I)$ the minimiser is the velocity of
  [`DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath] /
  [`EmpiricalPath`][jaxsa.processes.empirical.EmpiricalPath] of the same schedule,
  $\dot m_t\,\mathbb E[y|x] - \sigma_t\dot\sigma_t\nabla\ln P_t$. VP does not end at noise:
  its marginal at τ is the law of $m_\tau x_0 + \sigma_\tau x_1$, not $\mathcal N(0, I)$;
  $m_\tau = e^{-(\beta_{min}+\beta_{max})\tau/4} = 6.6\cdot10^{-3}$ and
  $1 - \sigma_\tau = 2\cdot10^{-5}$ at τ = 1, so $W_2(P^{VP}_\tau, \mathcal N(0, I)) \le
  m_\tau (\mathbb E|x_0|^2)^{1/2} + (1 - \sigma_\tau)\sqrt d$ (0.009 for standardised 2D data):
  a flow started from $\mathcal N(0, I)$ at τ starts that far from the path's own marginal.
  $\dot\sigma_t \propto t^{-1/2}$ as ``t → 0`` for VP, so the target's variance diverges like
  $1/t$ and the loss would have no finite mean: VP times are drawn on $[10^{-3}\tau, \tau]$
  (the network extrapolates below); cond-OT and cosine on $[10^{-6}\tau, \tau]$ (there
  $\dot\sigma_t = \sigma_t\dot\sigma_t/\sigma_t$ is bounded, only ``0/0`` at ``t = 0`` is avoided).

Every path uses the same network, batch and step budget (one ``CFMSettings``, only ``path``
differs). [`train_cfm`][jaxsa.processes.learned.train_cfm] caches the trained parameters
(``flax.serialization`` msgpack) under a file name that is the SHA-256 digest of the training
configuration (the path included) and of the data, so a second call with the same inputs loads
instead of training. [`compare_1d_ot`][jaxsa.processes.learned.compare_1d_ot] validates a model against
[`jaxsa.OTPath`][jaxsa.processes.ot.OTPath] in 1D.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import library_promotion
from jaxsa.solvers.flow import ODESettings, integrate
from jaxsa.processes.base import AbstractVelocityField
from jaxsa.quadrature import gauss_legendre

__all__ = ["CFMSettings", "LearnedVelocity", "VelocityMLP", "compare_1d_ot", "data_digest", "train_cfm",
           "train_cfm_family", "checkpoint_digest", "ot_coupled_pairs", "path_schedule"]


_ACTIVATIONS = ("silu", "gelu", "tanh")
_PATHS = ("ot", "cond-ot", "cosine", "vp")
_S_MIN = {"ot": 0.0, "cond-ot": 1e-6, "cosine": 1e-6, "vp": 1e-3}  # times drawn on [s_min τ, τ]


def _mlp_class():
    import flax.linen as nn

    class _VelocityMLP(nn.Module):
        r"""Time-conditioned MLP $u_\theta(s, x)$: input ``[x, features(s)]``, hidden layers
        ``act(Dense)``; ``features(s)``: ``s`` itself when ``time_features = 0``, else ``s`` and
        ``sin, cos(2π k s)`` for ``k = 1 .. time_features``."""

        dim: int
        width: int = 128
        depth: int = 3
        activation: str = "silu"
        time_features: int = 8

        @nn.compact
        def __call__(self, s, x):
            s = jnp.asarray(s, x.dtype)[..., None] * jnp.ones(x.shape[:-1] + (1,), x.dtype)
            feats = [s]
            if self.time_features > 0:
                k = jnp.arange(1, self.time_features + 1, dtype=x.dtype)
                k = k.reshape((1,) * (s.ndim - 1) + k.shape)  # explicit broadcasting over the batch
                feats += [jnp.sin(2 * jnp.pi * k * s), jnp.cos(2 * jnp.pi * k * s)]
            h = jnp.concatenate([x, *feats], -1)
            act = {"silu": nn.silu, "gelu": nn.gelu, "tanh": jnp.tanh}[self.activation]
            for _ in range(self.depth):
                h = act(nn.Dense(self.width, param_dtype=x.dtype)(h))
            return nn.Dense(self.dim, param_dtype=x.dtype)(h)

    return _VelocityMLP


def VelocityMLP(dim: int, width: int = 128, depth: int = 3, activation: str = "silu",
                time_features: int = 8):
    r"""The flax (linen) network $u_\theta(s, x)$, ``s = t/τ``: ``depth`` hidden layers of
    ``width`` units with ``activation`` (``"silu"``, ``"gelu"``, ``"tanh"``) on the input
    ``[x, s, sin(2πks), cos(2πks)]_{k ≤ time_features}`` (the paper: 5 × 1024); output
    ``(..., dim)`` in length per time. Its dtype is that of ``x``."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"VelocityMLP: `activation` must be one of {_ACTIVATIONS}, got {activation!r}.")
    return _mlp_class()(dim=dim, width=width, depth=depth, activation=activation,
                        time_features=time_features)


@dataclasses.dataclass(frozen=True)
class CFMSettings:
    """Training configuration (static; its digest names the checkpoint).

    Defaults (measured on the 2-core CPU, ``benchmarks/RESULTS.md`` "Fig. 3"): SiLU MLP 128 × 3
    with 8 sinusoidal time frequencies, batch 256, 5,000 Adam steps with linear warm-up and cosine
    decay, float32 training.

    Attributes:
        width, depth: MLP size. activation: ``"silu"``, ``"gelu"`` or ``"tanh"``.
        time_features: sinusoidal frequencies of ``s = t/τ`` fed to the network (0: ``s`` only).
        steps: optimiser steps. batch: minibatch size ``B``.
        learning_rate: peak Adam step; linear warm-up over ``warmup`` steps, then cosine decay
            to 1% at ``steps``.
        ot_epsilon: Sinkhorn ε relative to the mean squared distance of the minibatch.
        sinkhorn_iterations: iteration cap of the minibatch Sinkhorn (the coupling only needs to
            be roughly optimal).
        train_dtype: ``"float32"`` or ``"float64"``: dtype of the parameters and of training
            (the velocity is evaluated in this dtype and cast back to the input's).
        seed: PRNG seed. tau: duration τ.
        path: the conditional path (module docstring): ``"ot"`` (OT-CFM, minibatch OT pairs;
            the default, whose digest is that of before this field existed), ``"cond-ot"``,
            ``"cosine"`` or ``"vp"`` (independent pairs on that schedule's path).
    """

    width: int = 128
    depth: int = 3
    steps: int = 5000
    batch: int = 256
    learning_rate: float = 3e-3
    ot_epsilon: float = 0.05
    seed: int = 0
    tau: float = 1.0
    activation: str = "silu"
    time_features: int = 8
    warmup: int = 100
    sinkhorn_iterations: int = 50
    train_dtype: str = "float32"
    path: str = "ot"

    def __post_init__(self):
        for name in ("width", "depth", "steps", "batch", "sinkhorn_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CFMSettings: `{name}` must be >= 1, got {getattr(self, name)}.")
        for name in ("time_features", "warmup"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"CFMSettings: `{name}` must be >= 0, got {getattr(self, name)}.")
        for name in ("learning_rate", "ot_epsilon", "tau"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"CFMSettings: `{name}` must be > 0, got {getattr(self, name)}.")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"CFMSettings: `activation` must be one of {_ACTIVATIONS}, got {self.activation!r}.")
        if self.train_dtype not in ("float32", "float64"):
            raise ValueError(f"CFMSettings: `train_dtype` must be 'float32' or 'float64', got {self.train_dtype!r}.")
        if self.path not in _PATHS:
            raise ValueError(f"CFMSettings: `path` must be one of {_PATHS}, got {self.path!r}.")


class LearnedVelocity(AbstractVelocityField):
    r"""A trained velocity field $u_\theta(t, x)$ on ``[0, τ] × R^d`` (forward time).

    An [`AbstractVelocityField`][jaxsa.processes.base.AbstractVelocityField] on points of shape
    ``(d,)``: ``velocity(t, x)`` takes ``x`` of shape ``batch + (d,)`` and returns the same shape
    and dtype as ``x`` (the network itself runs in its parameters' dtype).
    """

    params: dict
    tau: jax.Array
    dim: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: str = eqx.field(static=True, default="silu")
    time_features: int = eqx.field(static=True, default=8)

    @property
    def event_shape(self) -> tuple:
        return (self.dim,)

    def velocity(self, t, x):
        net = VelocityMLP(self.dim, self.width, self.depth, self.activation, self.time_features)
        pdt = jax.tree_util.tree_leaves(self.params)[0].dtype
        s = jnp.broadcast_to(jnp.asarray(t, pdt) / self.tau.astype(pdt), x.shape[:-1])
        return net.apply({"params": self.params}, s, x.astype(pdt)).astype(x.dtype)

    def velocity_1d(self, t, x):
        """1D convenience: ``x`` of any shape, scalar per entry."""
        return self.velocity(t, x[..., None])[..., 0]


def ot_coupled_pairs(key, x0, x1, rel_eps, max_iterations=50):
    r"""Draw ``B`` pairs from the entropic OT plan between two minibatches (squared Euclidean
    cost): the minibatch coupling of OT-CFM training.

    Args:
        key: PRNG key of the draws. x0, x1: ``(B, d)`` points (data, prior).
        rel_eps: entropic regularisation $\epsilon$ relative to the mean cost.
        max_iterations: Sinkhorn iterations (a small, fixed budget; no implicit differentiation).

    Returns ``(x0[i], x1[j])``: ``B`` pairs drawn from the plan, each ``(B, d)``.
    """
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    x0, x1 = jax.lax.stop_gradient(x0), jax.lax.stop_gradient(x1)
    # ε = rel_eps × mean cost, computed here in the points' dtype (ott-jax's relative_epsilon
    # promotes it to float64 under x64, which breaks float32 solves)
    cost = pointcloud.PointCloud(x0, x1).cost_matrix
    geom = pointcloud.PointCloud(x0, x1, epsilon=(rel_eps * jnp.mean(cost)).astype(x0.dtype))
    # a fixed, small budget: the coupling only needs to be roughly optimal, and no
    # implicit differentiation is needed (the pairs are data, not parameters)
    solver = sinkhorn.Sinkhorn(threshold=1e-2, max_iterations=max_iterations, implicit_diff=None)
    # explicit marginals in the points' dtype
    a = jnp.full((x0.shape[0],), 1.0 / x0.shape[0], x0.dtype)
    b = jnp.full((x1.shape[0],), 1.0 / x1.shape[0], x1.dtype)
    with library_promotion():  # implicit promotions inside ott-jax's Sinkhorn
        out = solver(linear_problem.LinearProblem(geom, a=a, b=b))
    # B draws from the flattened plan by inverse CDF (a searchsorted of B uniforms): the Gumbel
    # trick of jax.random.categorical would draw B × B² Gumbels (1.1 s per step at B = 256)
    cdf = jnp.cumsum(jnp.clip(out.matrix, 0.0).reshape(-1))
    u = jax.random.uniform(key, (x0.shape[0],), cdf.dtype) * cdf[-1]
    idx = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, cdf.shape[0] - 1)
    n1 = x1.shape[0]
    return x0[idx // n1], x1[idx % n1]


_FORMAT = 2  # checkpoint format: {"meta": <digest blob>, "params": ...}; format 1 held bare params


def _digest_blob(settings: CFMSettings, data_id: str, dim: int, dtype) -> str:
    fields = dataclasses.asdict(settings)
    if fields["path"] == "ot":  # absent for OT-CFM: the digests from before `path` stay valid
        del fields["path"]
    return json.dumps({"settings": fields, "data": data_id, "dim": dim,
                       "dtype": str(jnp.dtype(dtype)), "format": _FORMAT}, sort_keys=True)


def checkpoint_digest(settings: CFMSettings, data_id: str, dim: int, dtype) -> str:
    """20 hex digits of the SHA-256 of the training settings (the path included, except the
    default ``"ot"``), data id, dimension, dtype and checkpoint format: the cache key of a
    trained model (``cfm-<digest>.msgpack``)."""
    return hashlib.sha256(_digest_blob(settings, data_id, dim, dtype).encode()).hexdigest()[:20]


def data_digest(arr) -> str:
    """SHA-256 of an array's bytes and shape: identifies an empirical data set in a cache key."""
    a = np.ascontiguousarray(np.asarray(arr))
    return hashlib.sha256(a.tobytes() + str(a.shape).encode() + str(a.dtype).encode()).hexdigest()


def train_cfm(sample_data: Callable, sample_prior: Callable, dim: int, settings: CFMSettings = CFMSettings(),
              *, data_id: str, cache_dir: str | None = None, progress=None,
              chunk: int = 250) -> tuple[LearnedVelocity, dict]:
    r"""Train $u_\theta$ by conditional flow matching on ``settings.path`` (OT-CFM by default;
    [spec §5][spec-5], module docstring), or load it from the cache.

    Args:
        sample_data: ``(key, n) -> (n, d)`` samples of the data $q$ (at ``t = 0``).
        sample_prior: ``(key, n) -> (n, d)`` samples of $P_\tau$ (at ``t = τ``); for the
            schedule paths the noise $x_1$ of $x_t = m_t x_0 + \sigma_t x_1$, which must be
            $\mathcal N(0, I)$ for the path to be the schedule's Gaussian path.
        dim: ``d``. settings: [`CFMSettings`][jaxsa.processes.learned.CFMSettings] (its ``train_dtype`` is the parameters'
            dtype; ``"float64"`` needs JAX's x64 mode).
        data_id: a string that identifies the data and prior (e.g. [`data_digest`][jaxsa.processes.learned.data_digest] of the
            data set plus the prior's name); it enters the cache key.
        cache_dir: folder of checkpoints (``cfm-<digest>.msgpack``); ``None``: no caching. A
            checkpoint stores the full configuration it was trained with and is used only if
            that matches exactly (otherwise it is retrained and overwritten).
        progress: optional ``f(step, loss)`` called every ``chunk`` steps; ``chunk`` optimiser
            steps run in one jitted ``lax.scan``.

    Returns:
        ``(model, info)``: the [`LearnedVelocity`][jaxsa.processes.learned.LearnedVelocity] and ``{"digest", "loaded", "loss",
        "path", "steps_per_s"}`` (``loss``: mean loss over the last chunk, ``nan`` when loaded).
    """
    import flax.serialization
    import optax

    if not isinstance(settings, CFMSettings):
        raise ValueError(  # noqa: TRY004 (the package's convention: bad input is a ValueError)
            f"train_cfm: `settings` must be a CFMSettings, got {type(settings).__name__}.")
    if int(dim) < 1:
        raise ValueError(f"train_cfm: `dim` must be >= 1, got {dim}.")
    if int(chunk) < 1:
        raise ValueError(f"train_cfm: `chunk` must be >= 1, got {chunk}.")
    dtype = jnp.dtype(settings.train_dtype)
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("train_cfm: settings.train_dtype='float64' needs jax_enable_x64.")
    tau = jnp.asarray(settings.tau, dtype)
    key = jax.random.PRNGKey(settings.seed)
    # probe the samplers once (shapes) before any other work
    probe = jnp.asarray(sample_data(key, 2))
    probe1 = jnp.asarray(sample_prior(key, 2))
    if probe.shape != (2, dim) or probe1.shape != (2, dim):
        raise ValueError(f"train_cfm: samplers must return (n, {dim}); got {probe.shape}, {probe1.shape}.")

    net = VelocityMLP(dim, settings.width, settings.depth, settings.activation, settings.time_features)
    key, kinit = jax.random.split(key)
    params = net.init(kinit, jnp.zeros((1,), dtype), jnp.zeros((1, dim), dtype))["params"]
    blob = _digest_blob(settings, data_id, dim, dtype)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:20]
    path = os.path.join(cache_dir, f"cfm-{digest}.msgpack") if cache_dir else None

    def model(p):
        return LearnedVelocity(p, tau, dim, settings.width, settings.depth,
                               activation=settings.activation, time_features=settings.time_features)

    stale = False
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            blob_bytes = f.read()
        try:
            raw = flax.serialization.msgpack_restore(blob_bytes)
            if not (isinstance(raw, dict) and raw.get("meta") == blob):
                raise ValueError("configuration mismatch")
            loaded = flax.serialization.from_state_dict(params, raw["params"])
            if any(a.shape != b.shape or a.dtype != b.dtype for a, b in
                   zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(params))):
                raise ValueError("parameter shapes differ")
        except Exception:  # noqa: BLE001 (any unreadable or foreign file is simply retrained)
            stale = True  # an old-format or foreign file under this name: retrain, overwrite
        else:
            return model(jax.tree_util.tree_map(jnp.asarray, loaded)), {
                "digest": digest, "loaded": True, "loss": float("nan"), "path": path}

    sched = optax.warmup_cosine_decay_schedule(
        0.0, settings.learning_rate, min(settings.warmup, max(settings.steps - 1, 0)),
        settings.steps, end_value=0.01 * settings.learning_rate)
    opt = optax.adam(sched)
    state = opt.init(params)
    b = settings.batch
    path_sched = None if settings.path == "ot" else path_schedule(settings.path, settings.tau)
    s_min = _S_MIN[settings.path]

    def loss_fn(p, s, xt, target):
        return jnp.mean(jnp.sum((net.apply({"params": p}, s, xt) - target) ** 2, -1))

    def step(carry, k):
        p, st = carry
        k0, k1, kc, ks = jax.random.split(k, 4)
        x0 = jnp.asarray(sample_data(k0, b)).astype(dtype)
        x1 = jnp.asarray(sample_prior(k1, b)).astype(dtype)
        if path_sched is None:  # OT-CFM: minibatch OT pairs, straight lines
            x0, x1 = ot_coupled_pairs(kc, x0, x1, settings.ot_epsilon, settings.sinkhorn_iterations)
            s = jax.random.uniform(ks, (b,), dtype)
            xt = (1 - s)[:, None] * x0 + s[:, None] * x1
            target = (x1 - x0) / tau
        else:  # independent pairs on the schedule's path; coefficients in the training dtype
            s = s_min + (1 - s_min) * jax.random.uniform(ks, (b,), dtype)
            v = path_sched.values(s * settings.tau)
            m, sg, dm, dsg = (c.astype(dtype)[:, None] for c in (v.m, v.sigma, v.dm, v.sigma_dsigma / v.sigma))
            xt, target = m * x0 + sg * x1, dm * x0 + dsg * x1
        loss, g = jax.value_and_grad(loss_fn)(p, s, xt, target)
        with library_promotion():  # implicit promotions inside optax's schedule and Adam
            upd, st = opt.update(g, st, p)
        return (optax.apply_updates(p, upd), st), loss

    @jax.jit
    def run_chunk(carry, keys):
        return jax.lax.scan(step, carry, keys)

    import time

    carry, done, last = (params, state), 0, float("nan")
    t_start = time.perf_counter()
    while done < settings.steps:
        n = min(int(chunk), settings.steps - done)
        key, sub = jax.random.split(key)
        keys = jax.random.split(sub, n)
        carry, losses = run_chunk(carry, keys)
        done += n
        last = float(jnp.mean(losses))
        if progress is not None:
            progress(done, last)
    rate = settings.steps / (time.perf_counter() - t_start)
    params = carry[0]
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(flax.serialization.msgpack_serialize(
                {"meta": blob, "params": flax.serialization.to_state_dict(params)}))
        os.replace(tmp, path)
    return model(params), {"digest": digest, "loaded": False, "loss": last, "path": path,
                           "steps_per_s": rate, "stale_checkpoint_replaced": stale}


def path_schedule(path: str, tau: float):
    r"""The package's [`Schedule`][jaxsa.schedules.standard.Schedule] of the conditional path
    ``path`` (``"cond-ot"``, ``"cosine"`` or ``"vp"``, VP with its default β's) at duration
    ``tau``: the $(m_t, \sigma_t)$ a CFM model of that path was trained on."""
    from jaxsa.schedules.standard import CondOT, Cosine, VPLinear

    return {"cond-ot": CondOT, "cosine": Cosine, "vp": lambda tau: VPLinear(tau=tau)}[path](tau)


def train_cfm_family(sample_data: Callable, sample_prior: Callable, dim: int,
                     settings: CFMSettings = CFMSettings(), *, paths=("cosine", "cond-ot", "vp", "ot"),
                     data_id: str, cache_dir: str | None = None, progress=None,
                     chunk: int = 250) -> dict:
    r"""One learned model per conditional path: [`train_cfm`][jaxsa.processes.learned.train_cfm]
    with ``settings`` (same network, batch and steps) and its ``path`` replaced by each of
    ``paths``; each is cached under its own digest. ``progress``: optional
    ``f(path, step, loss)``. Returns ``{path: (model, info)}`` in the order of ``paths``."""
    if not isinstance(settings, CFMSettings):
        raise ValueError(  # noqa: TRY004
            f"train_cfm_family: `settings` must be a CFMSettings, got {type(settings).__name__}.")
    paths = (paths,) if isinstance(paths, str) else tuple(paths)
    if not paths or len(set(paths)) != len(paths) or any(p not in _PATHS for p in paths):
        raise ValueError(f"train_cfm_family: `paths` must be distinct values of {_PATHS}, got {paths!r}.")
    return {p: train_cfm(sample_data, sample_prior, dim, dataclasses.replace(settings, path=p),
                         data_id=data_id, cache_dir=cache_dir, chunk=chunk,
                         progress=None if progress is None else functools.partial(progress, p))
            for p in paths}


def compare_1d_ot(model: LearnedVelocity, ot_path, perturbation=(1.0, 1.0), n_levels: int = 2000,
                  n_times: int = 32, ode_steps: int = 200) -> dict:
    r"""Validate a 1D learned field against the exact OT schedule [`jaxsa.OTPath`][jaxsa.processes.ot.OTPath] ([spec §5][spec-5]).

    All expectations use deterministic nodes, so the comparison carries no sampling noise:
    levels ``u_i = (i + ½)/n`` (normal scores $z_i = \Phi^{-1}(u_i)$) and Gauss–Legendre
    times on ``[0, τ]``; the exact particle at level ``u`` is ``ot_path.positions(t, z)``.

    Returns a dict with

    * ``velocity_rel_l2``: $\big(\int\!\!\int |u_\theta - \nu_t|^2 P_t\,dx\,dt /
      \int\!\!\int \nu_t^2 P_t\,dx\,dt\big)^{1/2}$ (relative error in $L^2(P_t\,dt)$).
    * ``c2_learned``, ``c2_exact``: $\int_0^\tau\!\int u^2 P_t$ with $P_t$ the exact OT
      marginal (Eq. 82), and the exact $W_2(q, P_\tau)^2/\tau$ (Eq. 91's equality).
    * ``eta_learned``, ``eta_exact``: response $\eta = (\Delta W_1)^2/(\tau D_0)$ (Eq. 77)
      for the Gaussian start $\tilde P_\tau = \mathcal N(\mu, s^2)$ (``perturbation``),
      the learned flow integrated backwards by RK4 with ``ode_steps`` steps, against the exact
      straight-line flow; and their relative errors.
    """
    from jax.scipy.special import ndtri

    from jaxsa.metrics import chi2_gaussian_1d

    if n_levels < 10 or n_times < 2 or ode_steps < 1:
        raise ValueError("compare_1d_ot: need `n_levels` >= 10, `n_times` >= 2, `ode_steps` >= 1.")
    dt_ = jnp.result_type(float)  # the comparison in JAX's default float (float64 under x64)
    tau = model.tau.astype(dt_)
    u = (jnp.arange(n_levels, dtype=dt_) + 0.5) / n_levels
    z = ndtri(u)
    g, w = gauss_legendre(n_times)  # on [0, 1], float64
    ts = jnp.asarray(g, dt_) * tau
    wt = jnp.asarray(w, dt_) * tau
    x0 = ot_path.data.normal_score_quantile(z)
    x1 = ot_path.prior.normal_score_quantile(z)
    v_exact = (x1 - x0) / tau

    def at(t):
        xt = ot_path.positions(t, z)
        return model.velocity_1d(t, xt)

    v_learn = jax.vmap(at)(ts)  # (n_times, n_levels)
    err2 = jnp.sum(wt * jnp.mean((v_learn - v_exact[None]) ** 2, -1))
    c2_exact = jnp.sum(wt) * jnp.mean(v_exact**2)
    c2_learned = jnp.sum(wt * jnp.mean(v_learn**2, -1))

    mu, sd = perturbation
    w_start = mu + sd * z  # the perturbed start at t = τ, same levels
    gen_learned = integrate(model.velocity_1d, w_start, tau, jnp.zeros_like(tau), jnp.zeros((1,), dt_),
                            ODESettings(solver="RK4", fixed_steps=ode_steps))[0][0]
    gen_exact = ot_path.inverse_map(w_start)
    w1_start = jnp.mean(jnp.abs(jnp.sort(w_start) - jnp.sort(x1)))
    D0 = chi2_gaussian_1d(mu, sd, 0.0, 1.0)

    def eta(gen):
        w1_gen = jnp.mean(jnp.abs(jnp.sort(gen) - jnp.sort(x0)))
        return (w1_gen - w1_start) ** 2 / (tau * D0)

    eta_l, eta_e = eta(gen_learned), eta(gen_exact)
    out = {"velocity_rel_l2": jnp.sqrt(err2 / c2_exact), "c2_learned": c2_learned, "c2_exact": c2_exact,
           "eta_learned": eta_l, "eta_exact": eta_e,
           "c2_rel_error": jnp.abs(c2_learned / c2_exact - 1),
           "eta_rel_error": jnp.abs(eta_l / eta_e - 1)}
    return {k: float(v) for k, v in out.items()}
