"""Thermodynamics of the forward process ([spec §1–2][spec-1]): entropy-production parts on a
grid ([`grid`][jaxsa.thermo.grid]), $v_2$ and $c_2$ in closed form
([`dissipation`][jaxsa.thermo.dissipation]), conditional kinetic energy
([`kinetic`][jaxsa.thermo.kinetic]), speed limits ([`speed_limits`][jaxsa.thermo.speed_limits]),
path-space entropy production ([`path_entropy`][jaxsa.thermo.path_entropy]) and Monte-Carlo
estimates in $d$ dimensions ([`monte_carlo`][jaxsa.thermo.monte_carlo])."""
