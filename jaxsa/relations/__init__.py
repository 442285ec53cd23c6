r"""The speed-accuracy relations of diffusion models in 1D: one call, one report ([spec §4][spec-4]).

[`speed_accuracy`][jaxsa.relations.speed_accuracy] takes a forward process ([`DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath] or
[`OTPath`][jaxsa.processes.ot.OTPath]), a perturbed start $\tilde P_\tau$ and static
[`Settings`][jaxsa.relations.Settings], and returns a [`Report`][jaxsa.relations.Report] pytree with

* $D_0 = \int(\tilde P_\tau - P_\tau)^2/P_\tau$ (Eq. 78) and its conservation along the flow
  (Appendix E);
* $\Delta W_1 = W_1(q,p) - W_1(P_\tau,\tilde P_\tau)$, $\eta = \Delta W_1^2/(\tau D_0)$;
* $v_2(t)^2 = T_t\dot S^{tot}_t = \int \nu_t^2 P_t$ (Eqs. 36, 67; every 1D velocity field is a
  gradient, so the equality holds), $v_{loss}(t)^2 = (\partial_t W_1(P_t,\tilde P_t))^2/D_0$;
* $c_1 = \int v_{loss}^2$, $c_2 = \int v_2^2$, $L_\tau = \int v_2$,
  $W_2(q,P_\tau)^2/\tau$ (Eqs. 79–82, 91);
* the slack of each inequality: Eq. 77, Eq. 80 (pointwise, its minimum), Eq. 82 (both
  halves), Eq. 91 (both halves); non-negative when the theorem holds.

The package: [`report`][jaxsa.relations.report] (settings, report, tolerances),
[`cdf`][jaxsa.relations.cdf] (the default method), [`quantile`][jaxsa.relations.quantile]
(quantile transport) and [`api`][jaxsa.relations.api] (checks, automatic resolution);
[`audit`][jaxsa.relations.audit] (any velocity field in $d$ dimensions, by particles, with
confidence intervals) and its [`estimators`][jaxsa.relations.estimators].
"""

from jaxsa.relations.audit import AuditReport, AuditSettings  # the function: jaxsa.audit
from jaxsa.relations.api import check_inputs, end_marginal, speed_accuracy, speed_accuracy_from_start
from jaxsa.relations.cdf import batched_cdf_jit, cdf_report
from jaxsa.relations.quantile import abs_quadrature, perturbation_start, quantile_nodes, quantile_report
from jaxsa.relations.report import SCALE_OF, Report, Settings, tolerance_of, violated

__all__ = [
    "Settings",
    "Report",
    "SCALE_OF",
    "violated",
    "tolerance_of",
    "speed_accuracy",
    "speed_accuracy_from_start",
    "perturbation_start",
    "check_inputs",
    "cdf_report",
    "batched_cdf_jit",
    "quantile_report",
    "quantile_nodes",
    "end_marginal",
    "abs_quadrature",
    "AuditSettings",
    "AuditReport",
]
