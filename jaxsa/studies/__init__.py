"""Studies over many configurations: resumable sharded sweeps ([`sweep`][jaxsa.studies.sweep]),
validation of the inequalities on random configurations ([`validate`][jaxsa.studies.validate])
and schedule optimisation ([`optimize`][jaxsa.studies.optimize])."""
