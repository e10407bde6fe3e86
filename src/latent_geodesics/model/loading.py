"""A trained model with its latent graph, the graph cached beside the model.

Everyone who uses a model needs both: the geodesic server, the active learner,
the benchmarks. The cache is used only when its digest binds it to this model's
weights and latents, the metric and these settings, its contents are valid and a
random sample of its edges measures what it says (graph_files); otherwise the
graph is rebuilt (and the reason reported through `warn`).
"""
import hashlib
import json
import os

from latent_geodesics.errors import ConfigError
from latent_geodesics.graph.build import GRAPH
from latent_geodesics.graph.latent_graph import GraphError, LatentGraph
from latent_geodesics.model.iwae import load_model
from latent_geodesics.model.uncertainty import VarianceAwareDecoder, fit_rbf_precision

METRICS = ("mean+variance", "mean")
# The data-aware metric by default: under the decoder mean alone (J^T J) a decoder
# that extrapolates smoothly between demonstrations makes the joint-space chord the
# shortest path, and every shortening stage finds it instead of the demonstrations.
DEFAULT_METRIC = "mean+variance"


def metric_decoder(model, metric=DEFAULT_METRIC):
    """The callable whose pull-back metric every stage measures with: with
    "mean+variance" the decoder mean and an RBF variance that grows away from the
    data (G = J_mu^T J_mu + J_sigma^T J_sigma, uncertainty.py), so leaving the
    demonstrations costs more than following them; with "mean" the mean alone.
    Fitted on the model's own encoded data: a new model (a new round, a reload)
    gets a new fit."""
    if metric not in METRICS:
        raise ConfigError("metric must be one of %s, not %r" % (", ".join(METRICS), metric))
    return model if metric == "mean" else VarianceAwareDecoder(model, fit_rbf_precision(model))


def cache_path(model, k, n_samples, metric=DEFAULT_METRIC):
    return os.path.join(model.directory, "graph_k%d_n%d%s.npz" % (
        k, n_samples, "" if metric == "mean" else "_data"))


# Raised whenever the way edges are measured changes (2: edges cut at the graph's
# resolution like every measure, and the variance term's exact fast path): a cache of
# an older measure is rebuilt, not left to a random spot check to catch.
MEASURE_VERSION = 2


def graph_model_id(model, metric):
    """What a cached graph is bound to (graph_files' digest covers it): the checksums
    of the weights and latents it was built from, the metric it measured with, and
    the version of the measure."""
    files = model.meta["files"]
    return hashlib.sha256(json.dumps([files["weights.pt"], files["latents.npy"], metric,
                                      MEASURE_VERSION]).encode()).hexdigest()


def model_graph(model, k=GRAPH.k, n_samples=GRAPH.n_samples, metric=DEFAULT_METRIC,
                cache=True, warn=print, **options):
    """The latent graph of a loaded model: (graph, "loaded from cache" | "built").
    options: LatentGraph's search settings (outside_factor, relax_iterations)."""
    decoder = metric_decoder(model, metric)
    model_id = graph_model_id(model, metric)
    path = cache_path(model, k, n_samples, metric)
    if cache and os.path.isfile(path):
        try:
            graph = LatentGraph.load(path, decoder, k, n_samples, model_id,
                                     nodes=model.latents, **options)
            return graph, "loaded from cache"
        except GraphError as e:
            warn("graph cache not used, rebuilding: %s" % e)
    graph = LatentGraph(decoder, model.latents, k, n_samples, **options)
    if cache:
        try:
            graph.save(path, model_id)
        except OSError as e:
            warn("graph cache not written: %s" % e)
    return graph, "built"


def load_model_with_graph(model_dir: str, device="auto", warn=print, **graph_settings):
    """(model, graph) for a model directory; graph_settings as for model_graph."""
    model = load_model(model_dir, device)
    return model, model_graph(model, warn=warn, **graph_settings)[0]
