"""Building the kNN graph over latent points: nodes joined to their k nearest
latent neighbours (scipy cKDTree), each undirected edge weighted once by the
decoded length of its straight latent segment, measured by the graph's
LatentMetric at the resolution `step` (the median k-th neighbour distance over
n_samples - 1: the typical edge gets n_samples points), components
bridged into one (graph_bridges), nodes added later with only the new edges
measured. LatentGraph (graph.py) answers queries on top."""
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from latent_geodesics.errors import ConfigError, GraphError
from latent_geodesics.geometry.curves import to_numpy
from latent_geodesics.geometry.metric import Decoder, LatentMetric, Points
from latent_geodesics.graph.bridges import MIN_WEIGHT, connect
from latent_geodesics.graph.search import GraphSearch

# Graph paths are not energy-relaxed by default: under the data-aware metric a relaxed
# path is a little shorter but strays further from the data (arm: 0.073 against 0.054
# rad median distance to the recorded poses) and costs three times the query; the
# ~nn_geodesic refinement is the one that relaxes.
RELAX_ITERATIONS = 0
EDGE_PIECES = 64   # at most this many pieces measure one edge (an attached end's included)


@dataclass(frozen=True)
class GraphSettings:
    """The graph's defaults, defined once: the server's Settings, model_graph and
    LatentGraph take theirs from here."""
    k: int = 10                      # neighbours per node
    n_samples: int = 10              # points per edge when measuring its decoded length
    outside_factor: float = 3.0      # refuse points farther than this x the neighbour reach
    relax_iterations: int = RELAX_ITERATIONS


GRAPH = GraphSettings()


def unique_pairs(idx, n, dist=None, rows=1 << 16):
    """kNN index table (N, k+1) -> unique undirected pairs (E, 2), i < j.

    No sort: a pair {i, j} (i < j) is listed by row i, or by row j, or both. Row
    i's pairs with j > i are kept; its pairs with j < i only where row j does not
    list i. With the kNN distances `dist`, "row j lists i" is d(i, j) < the k-th
    distance of j (a gather of one number); ties and calls without `dist` gather
    row j. Linear in N k, the same on numpy 1 and 2. Missing neighbours (index n,
    as cKDTree reports them) are dropped. Blocks of `rows` rows keep temporaries
    small: a first call does not pay for faulting in fresh memory.
    """
    idx = np.asarray(idx, dtype=np.int64)
    kth = None if dist is None else np.ascontiguousarray(dist[:, -1])
    blocks = [_block_pairs(idx, start, idx[start:start + rows], n,
                           None if dist is None else dist[start:start + rows], kth)
              for start in range(0, len(idx), rows)]
    return np.concatenate(blocks) if blocks else np.empty((0, 2), dtype=np.int64)


def _block_pairs(idx, start, block, n, dist, kth):
    width, flat_idx = block.shape[1], block.ravel()
    own = np.arange(start, start + len(block), dtype=np.int64)[:, None]
    real = block < n
    fwd = np.flatnonzero((real & (block > own)).ravel())   # flat indices: cheaper than 2-D
    back = np.flatnonzero((real & (block < own)).ravel())
    i_back, j_back = start + back // width, flat_idx[back]
    if dist is None:
        listed = (idx[j_back] == i_back[:, None]).any(1)
    else:
        d_back, kth_back = np.ravel(dist)[back], kth[j_back]
        listed = d_back < kth_back
        tie = np.flatnonzero(d_back == kth_back)
        listed[tie] = (idx[j_back[tie]] == i_back[tie, None]).any(1)
    keep = ~listed
    return np.stack([np.r_[start + fwd // width, j_back[keep]],
                     np.r_[flat_idx[fwd], i_back[keep]]], 1)


class KnnGraph:
    def __init__(self, decoder: Decoder, nodes: Points, k: int = GRAPH.k,
                 n_samples: int = GRAPH.n_samples, batch_size=65536,
                 outside_factor=GRAPH.outside_factor, relax_iterations=GRAPH.relax_iterations):
        """decoder: callable (B, Nz) -> (B, Nx); nodes: (N, Nz) latent points."""
        self._settings(decoder, nodes, k, n_samples, batch_size, outside_factor,
                       relax_iterations)
        start = time.perf_counter()
        self.tree = cKDTree(self.nodes)
        self.node_x = self._decode(self.nodes)
        pairs = self._knn_pairs()
        weights = self._edge_lengths(self.nodes[pairs[:, 0]], self.nodes[pairs[:, 1]],
                                     self.node_x[pairs[:, 0]], self.node_x[pairs[:, 1]])
        self._set_edges(pairs, weights, np.zeros(len(pairs), bool))
        connect(self)
        self.build_stats = {"time": time.perf_counter() - start, "edges": len(self.edges),
                            "bridges": int(self.is_bridge.sum())}

    @classmethod
    def from_arrays(cls, decoder, nodes, node_x, edges, weights, is_bridge, k, n_samples,
                    reach, step, batch_size=65536, outside_factor=GRAPH.outside_factor,
                    relax_iterations=GRAPH.relax_iterations):
        """A graph built before (graph_files), without measuring anything again."""
        graph = cls.__new__(cls)
        graph._settings(decoder, nodes, k, n_samples, batch_size, outside_factor,
                        relax_iterations)
        graph.tree, graph.node_x = cKDTree(graph.nodes), node_x
        graph.reach, graph.step = float(reach), float(step)
        graph._set_edges(edges, weights, is_bridge)
        return graph

    def _settings(self, decoder, nodes, k, n_samples, batch_size, outside_factor,
                  relax_iterations):
        if int(k) < 1 or int(n_samples) < 2:
            raise ConfigError("k must be >= 1 and n_samples >= 2")
        self.decoder = decoder
        self.metric = LatentMetric(decoder, int(batch_size))
        self.k, self.n_samples = int(k), int(n_samples)
        self.batch_size = int(batch_size)
        self.outside_factor = float(outside_factor)
        self.relax_iterations = int(relax_iterations)
        nodes = to_numpy(nodes)
        if nodes.ndim != 2 or len(nodes) < 2:
            raise GraphError("nodes must be an (N >= 2, Nz) array, got shape %s" % (nodes.shape,))
        if not np.isfinite(nodes).all():
            raise GraphError("nodes hold NaN or inf")
        self.nodes = nodes
        self.build_stats = {}

    @property
    def dim(self):
        return self.nodes.shape[1]

    def __len__(self):
        return len(self.nodes)

    # --- building ---------------------------------------------------------
    def _knn_pairs(self, set_scale=True):
        """Unique kNN pairs over all nodes; also sets the graph's reach and step
        (unless set_scale is False: a grown graph keeps the resolution its edges
        were measured at, so every edge stays measured alike)."""
        workers = -1 if len(self.nodes) > 5000 else 1   # threads only pay off when large
        dist, idx = self.tree.query(self.nodes, min(self.k + 1, len(self.nodes)),
                                    workers=workers)
        if set_scale:
            # Scale for "far outside the data": the typical k-th neighbour distance.
            self.reach = float(np.percentile(dist[:, -1], 99))
            # Latent resolution of every measure: the typical edge's sample spacing.
            self.step = max(float(np.median(dist[:, -1])) / (self.n_samples - 1), 1e-12)
        return unique_pairs(idx, len(self.nodes), dist)

    @torch.no_grad()
    def _decode(self, z):
        return self.metric.embed(z)

    def _edge_lengths(self, za, zb, xa=None, xb=None):
        """Edge weights: the metric's segment lengths at the graph's resolution (so a
        path of edges measures as the sum of its weights); ends' embeddings reused."""
        return np.maximum(self.metric.segment_lengths(za, zb, self.step, EDGE_PIECES, xa, xb),
                          MIN_WEIGHT)

    def _set_edges(self, pairs, weights, is_bridge):
        self.edges, self.weights, self.is_bridge = pairs, weights, is_bridge
        n = len(self.nodes)
        i, j = pairs[:, 0], pairs[:, 1]
        self.matrix = coo_matrix((np.r_[weights, weights], (np.r_[i, j], np.r_[j, i])),
                                 shape=(n, n)).tocsr()
        self.n_components, self.components = connected_components(self.matrix, directed=False)
        self._node_x_np = self.node_x.double().cpu().numpy()
        self.search = GraphSearch(self.nodes, self.matrix, pairs, weights, self._node_x_np)
        self._bridge_keys = {(int(a), int(b)) for a, b in pairs[is_bridge]}

    def add_nodes(self, points):
        """Join new latent points to the graph; only the new edges are measured.

        Adding nodes can only put new nodes into kNN lists, so every new kNN
        pair involves a new node; old edges (bridges included) are kept.
        """
        new = to_numpy(points).reshape(-1, self.dim)
        if not np.isfinite(new).all():
            raise GraphError("new nodes hold NaN or inf")
        start, old_n = time.perf_counter(), len(self.nodes)
        self.nodes = np.vstack([self.nodes, new])
        self.node_x = torch.cat([self.node_x, self._decode(new)])
        self.tree = cKDTree(self.nodes)
        pairs = self._knn_pairs(set_scale=False)
        pairs = pairs[pairs[:, 1] >= old_n]
        weights = self._edge_lengths(self.nodes[pairs[:, 0]], self.nodes[pairs[:, 1]],
                                     self.node_x[pairs[:, 0]], self.node_x[pairs[:, 1]])
        self._set_edges(np.vstack([self.edges, pairs]), np.r_[self.weights, weights],
                        np.r_[self.is_bridge, np.zeros(len(pairs), bool)])
        connect(self)
        return {"time": time.perf_counter() - start, "new_edges": len(pairs)}
