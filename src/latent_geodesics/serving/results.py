"""What the engine answers: a timed path, and its summary typed field for field as
msg/GeodesicStats.msg carries it (a test checks they agree)."""
from dataclasses import asdict, dataclass

import numpy as np

from latent_geodesics.geometry.curves import PathStats
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
    stats: "GeodesicSummary"    # what the response's stats carry
    path_stats: PathStats       # what finding the latent path measured (cancelled, ...)

    @property
    def times(self):
        """Seconds from the start."""
        return self.time_ns / NS

    def summary(self):
        """The response's stats (the front ends' GeodesicStats(**asdict(summary())))."""
        return self.stats


@dataclass(frozen=True)
class DataFidelity:
    """How far a timed motion, and the joint straight line between its ends, stray
    from the recorded poses (rad; spacings: in units of data_spacing)."""
    data_distance: float
    data_distance_mean: float
    data_distance_spacings: float
    data_spacing: float
    chord_data_distance: float
    chord_data_distance_mean: float


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
    min_clearance: float = float("inf")   # m, the body's nearest approach to an object
    clearance_link: str = ""
    clearance_object: str = ""

    @classmethod
    def of(cls, method, stats, num_points, offsets, clipped_points, max_joint_step, duration,
           fidelity, contact=None):
        """The summary of a latent path (its method and PathStats) as planned: offsets
        (start, goal), the planning figures and its DataFidelity."""
        return cls(method=method, candidate=stats.candidate, compute_time=float(stats.time),
                   nodes_expanded=int(stats.nodes_expanded), iterations=int(stats.iterations),
                   num_points=int(num_points), bridges=int(stats.bridges),
                   start_offset=float(offsets[0]), goal_offset=float(offsets[1]),
                   clipped_points=int(clipped_points), max_joint_step=float(max_joint_step),
                   duration=float(duration), **asdict(fidelity), **clearance_fields(contact))


def clearance_fields(contact):
    """The summary's clearance figures of a world Contact (None: no objects)."""
    if contact is None:
        return {}
    return {"min_clearance": float(contact.clearance), "clearance_link": contact.link,
            "clearance_object": contact.object}
