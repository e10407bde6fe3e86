"""Graph geodesics (Chen et al., ICANN 2019): LatentGraph answers queries
(latent_graph.py) over a kNN graph that build.py measures, bridges.py connects,
search.py searches in compiled code and files.py saves and checks."""
from latent_geodesics.errors import GraphError
from latent_geodesics.graph.latent_graph import LatentGraph

__all__ = ["GraphError", "LatentGraph"]
