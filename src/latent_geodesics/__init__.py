"""latent_geodesics: geodesics in the latent space of deep generative models.

The small public API (see DESIGN.md); every module is importable without ROS:

    from latent_geodesics import LatentGraph, nn_geodesic, curve_length

Names load on first use, so `python -m latent_geodesics.training` (run by the
active learner for every round) does not import its own module twice.
"""
import importlib
import pkgutil

# The ROS 2 build installs the generated interfaces (latent_geodesics.msg, .srv,
# .action) as a package of the same name in its venv: both directories are one package.
__path__ = pkgutil.extend_path(__path__, __name__)

__version__ = "0.1.0"
_EXPORTS = {"Geodesic": "curves", "curve_length": "geometry", "metric_tensor": "geometry",
            "magnification_factor": "geometry", "LatentGraph": "graph",
            "load_model_with_graph": "loading", "IWAE": "model", "load_model": "model",
            "save_model": "model", "nn_geodesic": "nn_geodesic",
            "refined_geodesic": "nn_geodesic", "train_iwae": "training"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    return getattr(importlib.import_module("." + _EXPORTS[name], __name__), name)
