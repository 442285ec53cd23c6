r"""Noise schedules $(m_t, \sigma_t)$ ([spec §3][spec-3]): the standard ones
([`standard`][jaxsa.schedules.standard]) and the parametric families that sweeps and
schedule optimisation search over ([`families`][jaxsa.schedules.families])."""

from jaxsa.schedules.families import Interpolated as Interpolated
from jaxsa.schedules.families import PolarBernstein as PolarBernstein
from jaxsa.schedules.standard import CondOT as CondOT
from jaxsa.schedules.standard import Cosine as Cosine
from jaxsa.schedules.standard import Custom as Custom
from jaxsa.schedules.standard import Schedule as Schedule
from jaxsa.schedules.standard import ScheduleValues as ScheduleValues
from jaxsa.schedules.standard import VEGeometric as VEGeometric
from jaxsa.schedules.standard import VPLinear as VPLinear
from jaxsa.schedules.standard import check_schedule as check_schedule

__all__ = ["Schedule", "ScheduleValues", "Cosine", "CondOT", "VPLinear", "VEGeometric", "Custom",
           "check_schedule", "Interpolated", "PolarBernstein"]
