"""Data sets: a simulated Panda arm (with a hole, or two skills with a gap), a
pendulum, two arcs with a gap, the recorded Laikago, and loaders."""
from .arcs import two_arcs
from .arm import ArmSimulator, arm_dataset, two_skills
from .laikago import laikago_dataset
from .loaders import DataError, load_data, validate
from .pendulum import pendulum_dataset

__all__ = ["ArmSimulator", "arm_dataset", "laikago_dataset", "pendulum_dataset", "two_arcs",
           "two_skills", "DataError", "load_data", "validate"]
