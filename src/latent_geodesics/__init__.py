"""latent_geodesics: geodesics in the latent space of deep generative models.

The small public API; every module outside ros/ and ros2/ is importable without ROS.
The layers, each a subpackage, import only downwards: geometry, graph, data and
sim, model, then serving and learning; the front ends (ros, ros2) and the demo on
top. nn_geodesic and training are the stable public names of two modules inside.

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
_EXPORTS = {"Geodesic": "geometry.curves", "curve_length": "geometry.metric",
            "metric_tensor": "geometry.metric", "magnification_factor": "geometry.metric",
            "LatentMetric": "geometry.metric", "LatentGraph": "graph.latent_graph",
            "load_model_with_graph": "model.loading", "IWAE": "model.iwae",
            "load_model": "model.iwae", "save_model": "model.iwae",
            "nn_geodesic": "geometry.refinement", "refined_geodesic": "geometry.refinement",
            "train_iwae": "model.training"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    return getattr(importlib.import_module("." + _EXPORTS[name], __name__), name)
