"""Geometry of a decoder's latent space: the one metric object (metric.py), latent
polylines and their shortening and relaxation (curves.py), the refinements
(refinement.py) and the metric's pictures (plots.py)."""
from latent_geodesics.geometry.metric import (
    Decoder,
    LatentMetric,
    Points,
    curve_energy,
    curve_length,
    jacobian,
    log_magnification_factor,
    magnification_factor,
    metric_tensor,
)

__all__ = ["Decoder", "LatentMetric", "Points", "curve_energy", "curve_length", "jacobian",
           "log_magnification_factor", "magnification_factor", "metric_tensor"]
