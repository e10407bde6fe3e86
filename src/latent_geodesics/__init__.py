"""latent_geodesics: geodesics in the latent space of deep generative models.

The small public API (see DESIGN.md); every module is importable without ROS:

    from latent_geodesics import LatentGraph, nn_geodesic, curve_length
"""
from .curves import Geodesic
from .geometry import curve_length, magnification_factor, metric_tensor
from .graph import LatentGraph
from .loading import load_model_with_graph
from .model import IWAE, load_model, save_model
from .nn_geodesic import nn_geodesic, refined_geodesic
from .training import train_iwae

__version__ = "0.1.0"
__all__ = ["Geodesic", "IWAE", "LatentGraph", "curve_length", "load_model",
           "load_model_with_graph", "magnification_factor", "metric_tensor", "nn_geodesic",
           "refined_geodesic", "save_model", "train_iwae"]
