"""What the engine answers: a timed path, and its summary typed field for field as
msg/GeodesicStats.msg carries it (a test checks they agree)."""
from dataclasses import dataclass

import numpy as np

from latent_geodesics.serving.trajectory import NS


@dataclass
class PathResult:
    """A geodesic decoded and timed for a controller."""
    latent: np.ndarray          # (M, Nz)
    positions: np.ndarray       # (M, Nx), the served joint order
    time_ns: np.ndarray         # (M,) integer nanoseconds from start
    velocities: np.ndarray      # (M, Nx)
    accelerations: np.ndarray   # (M, Nx)
    joint_names: list
    length: float
    straight_line_length: float
    stats: dict                 # everything measured on the way, by name

    @property
    def times(self):
        """Seconds from the start."""
        return self.time_ns / NS

    def summary(self):
        return GeodesicSummary.of(self)


@dataclass(frozen=True)
class GeodesicSummary:
    method: str                 # graph, polyline, graph+polyline, nn, ...
    candidate: str              # which candidate path won ("" when there was no choice)
    compute_time: float         # s spent finding the latent path
    nodes_expanded: int         # nodes the graph search settled (0: no graph search)
    iterations: int             # refinement iterations (0: none)
    num_points: int
    bridges: int                # bridge edges (across gaps in the data) on the path
    start_offset: float         # rad, the model's residual carried from the start
    goal_offset: float
    clipped_points: int         # waypoints clipped to the position limits
    max_joint_step: float       # rad between consecutive points
    duration: float             # s
    data_distance: float        # rad, the motion's largest distance from the recorded poses
    data_distance_mean: float
    data_distance_spacings: float
    data_spacing: float
    chord_data_distance: float  # the same for the joint straight line
    chord_data_distance_mean: float

    @classmethod
    def of(cls, result):
        """Required figures by name (a misspelt key fails here, not as a silent 0);
        figures only some methods have default to 0 / ""."""
        st = result.stats
        return cls(method=st["method"], candidate=st.get("candidate", ""),
                   compute_time=float(st.get("time", 0.0)),
                   nodes_expanded=int(st.get("nodes_expanded", 0)),
                   iterations=int(st.get("iterations", 0)), num_points=len(result.latent),
                   bridges=int(st.get("bridges", 0)), start_offset=st["start_offset"],
                   goal_offset=st["goal_offset"], clipped_points=st["clipped_points"],
                   max_joint_step=st["max_joint_step"], duration=st["duration"],
                   **{name: st[name] for name in FIDELITY})


FIDELITY = ("data_distance", "data_distance_mean", "data_distance_spacings", "data_spacing",
            "chord_data_distance", "chord_data_distance_mean")
