"""Data sets: a simulated Panda arm, a pendulum, the recorded Laikago, and loaders."""
from .arm import ArmSimulator, arm_dataset
from .laikago import laikago_dataset
from .loaders import DataError, load_data, validate
from .pendulum import pendulum_dataset

__all__ = ["ArmSimulator", "arm_dataset", "laikago_dataset", "pendulum_dataset",
           "DataError", "load_data", "validate"]
