"""Forward processes and velocity fields: the protocol they share, and its implementations."""

from jaxsa.processes.base import AbstractForwardProcess as AbstractForwardProcess
from jaxsa.processes.base import AbstractVelocityField as AbstractVelocityField
from jaxsa.processes.base import VelocityFunction as VelocityFunction
from jaxsa.processes.base import velocity_field as velocity_field
