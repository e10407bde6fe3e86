"""Simulated and recorded systems the demo, tests and bench use: a Panda arm (with a
hole, two skills, curved skills), a pendulum, two arcs with a gap, laikago."""
