"""The public name of the refinements (geometry/refinement.py), kept stable."""
from latent_geodesics.geometry.refinement import nn_geodesic, polyline_geodesic, refined_geodesic

__all__ = ["nn_geodesic", "polyline_geodesic", "refined_geodesic"]
