"""Solvers: the one probability-flow ODE integrator ([`flow`][jaxsa.solvers.flow]), and the
finite-volume Fokker–Planck ([`fokker_planck`][jaxsa.solvers.fokker_planck]) and transport
([`transport`][jaxsa.solvers.transport]) solvers on grids."""
