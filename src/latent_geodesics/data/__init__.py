"""Data sets: a simulated Panda arm (with a hole, or two skills with a gap), a
pendulum, two arcs with a gap, the recorded Laikago, and loaders."""
from latent_geodesics.data.loaders import DataError, load_data, validate
from latent_geodesics.sim.arcs import two_arcs
from latent_geodesics.sim.arm import ArmSimulator, arm_dataset, two_skills
from latent_geodesics.sim.laikago import laikago_dataset
from latent_geodesics.sim.pendulum import pendulum_dataset

__all__ = ["ArmSimulator", "arm_dataset", "laikago_dataset", "pendulum_dataset", "two_arcs",
           "two_skills", "DataError", "load_data", "validate"]
