"""Graph-based geodesics (Chen et al., ICANN 2019).

Nodes are latent points (the posterior means of the data); each is joined to
its k nearest latent neighbours (scipy cKDTree), and each undirected edge is
weighted once by the decoded length of its straight latent segment with
`n_samples` points. Queries run A* with the heuristic ||f(z_v) - f(z_goal)||,
which never overestimates a decoded polyline's length (triangle inequality),
so A* returns Dijkstra's answer while expanding fewer nodes.
"""
import heapq
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from .geometry import as_points, decode, decoder_device_dtype

MIN_WEIGHT = 1e-12   # csgraph drops zero weights; duplicate nodes still connect
SAME_POINT = 1e-9    # latent distance under which a query point *is* a node
FILE_VERSION = 1


class GraphError(ValueError):
    """A query or file the graph cannot answer; the message says why."""


@dataclass
class Geodesic:
    """A latent path: points[0] = start, points[-1] = goal, its decoded length."""
    points: np.ndarray
    length: float
    method: str
    stats: dict = field(default_factory=dict)


def to_numpy(points):
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    return np.asarray(points, dtype=np.float64)


def check_point(z, dim, what="point"):
    z = to_numpy(z).reshape(-1) if np.ndim(z) else np.array([np.nan])
    if z.size != dim:
        raise GraphError("%s has dimension %d, the latent space has %d" % (what, z.size, dim))
    if not np.isfinite(z).all():
        raise GraphError("%s holds NaN or inf" % what)
    return z


def unique_pairs(idx):
    """kNN index table (N, k+1) -> unique undirected pairs (E, 2), i < j."""
    rows = np.repeat(np.arange(len(idx)), idx.shape[1])
    pairs = np.stack([rows, idx.ravel()], 1)
    pairs = np.sort(pairs[(pairs[:, 0] != pairs[:, 1]) & (pairs[:, 1] < len(idx))], axis=1)
    keys = np.unique(pairs[:, 0] * len(idx) + pairs[:, 1])   # 1-D unique: much faster
    return np.stack([keys // len(idx), keys % len(idx)], 1)


class LatentGraph:
    def __init__(self, decoder, nodes, k=10, n_samples=10, batch_size=65536,
                 outside_factor=3.0, _build=True):
        """decoder: callable (B, Nz) -> (B, Nx); nodes: (N, Nz) latent points."""
        if int(k) < 1 or int(n_samples) < 2:
            raise ValueError("k must be >= 1 and n_samples >= 2")
        self.decoder = decoder
        self.k, self.n_samples = int(k), int(n_samples)
        self.batch_size = int(batch_size)
        self.outside_factor = float(outside_factor)
        nodes = to_numpy(nodes)
        if nodes.ndim != 2 or len(nodes) < 2:
            raise GraphError("nodes must be an (N >= 2, Nz) array, got shape %s" % (nodes.shape,))
        if not np.isfinite(nodes).all():
            raise GraphError("nodes hold NaN or inf")
        self.nodes = nodes
        self.build_stats = {}
        if _build:
            start = time.perf_counter()
            self.tree = cKDTree(nodes)
            self.node_x = self._decode(nodes)
            pairs = self._knn_pairs()
            self._set_edges(pairs, self._edge_lengths(nodes[pairs[:, 0]], nodes[pairs[:, 1]],
                                                      self.node_x[pairs[:, 0]],
                                                      self.node_x[pairs[:, 1]]))
            self.build_stats = {"time": time.perf_counter() - start, "edges": len(pairs)}

    @property
    def dim(self):
        return self.nodes.shape[1]

    def __len__(self):
        return len(self.nodes)

    # --- building ---------------------------------------------------------
    def _knn_pairs(self):
        """Unique kNN pairs over all nodes; also sets the graph's reach."""
        workers = -1 if len(self.nodes) > 5000 else 1   # threads only pay off when large
        dist, idx = self.tree.query(self.nodes, min(self.k + 1, len(self.nodes)),
                                    workers=workers)
        # Scale for "far outside the data": the typical k-th neighbour distance.
        self.reach = float(np.percentile(dist[:, -1], 99))
        return unique_pairs(idx)

    @torch.no_grad()
    def _decode(self, z):
        return decode(self.decoder, as_points(z, self.decoder), self.batch_size)

    @torch.no_grad()
    def _edge_lengths(self, za, zb, xa=None, xb=None):
        """Decoded lengths of straight segments za -> zb, n_samples points each.

        Only the interior points are decoded; endpoint decodings are reused.
        """
        za, zb = as_points(za, self.decoder), as_points(zb, self.decoder)
        xa = self._decode(za) if xa is None else xa
        xb = self._decode(zb) if xb is None else xb
        t = torch.linspace(0, 1, self.n_samples, device=za.device, dtype=za.dtype)[1:-1]
        per_chunk = max(1, self.batch_size // max(1, len(t)))
        out = []
        for s in range(0, len(za), per_chunk):
            a, b = za[s:s + per_chunk], zb[s:s + per_chunk]
            if len(t) == 0:
                out.append((xb[s:s + per_chunk] - xa[s:s + per_chunk]).norm(dim=-1))
                continue
            x = decode(self.decoder, a[:, None] + t[None, :, None] * (b - a)[:, None])
            out.append((x[:, 0] - xa[s:s + per_chunk]).norm(dim=-1)
                       + (x[:, 1:] - x[:, :-1]).norm(dim=-1).sum(-1)
                       + (xb[s:s + per_chunk] - x[:, -1]).norm(dim=-1))
        if not out:
            return np.zeros(0)
        return np.maximum(torch.cat(out).double().cpu().numpy(), MIN_WEIGHT)

    def _set_edges(self, pairs, weights):
        self.edges, self.weights = pairs, weights
        n = len(self.nodes)
        i, j = pairs[:, 0], pairs[:, 1]
        self.matrix = coo_matrix((np.r_[weights, weights], (np.r_[i, j], np.r_[j, i])),
                                 shape=(n, n)).tocsr()
        self.n_components, self.components = connected_components(self.matrix, directed=False)
        # Plain lists: A*'s inner loop is pure Python and list indexing is cheapest.
        self._indptr = self.matrix.indptr.tolist()
        self._indices = self.matrix.indices.tolist()
        self._data = self.matrix.data.tolist()
        self._node_x_np = self.node_x.double().cpu().numpy()

    def add_nodes(self, points):
        """Join new latent points to the graph; only the new edges are measured.

        Adding nodes can only put new nodes into kNN lists, so every new kNN
        pair involves a new node; old edges are kept.
        """
        new = to_numpy(points).reshape(-1, self.dim)
        if not np.isfinite(new).all():
            raise GraphError("new nodes hold NaN or inf")
        start, old_n = time.perf_counter(), len(self.nodes)
        self.nodes = np.vstack([self.nodes, new])
        self.node_x = torch.cat([self.node_x, self._decode(new)])
        self.tree = cKDTree(self.nodes)
        pairs = self._knn_pairs()
        pairs = pairs[pairs[:, 1] >= old_n]
        weights = self._edge_lengths(self.nodes[pairs[:, 0]], self.nodes[pairs[:, 1]],
                                     self.node_x[pairs[:, 0]], self.node_x[pairs[:, 1]])
        self._set_edges(np.vstack([self.edges, pairs]), np.r_[self.weights, weights])
        return {"time": time.perf_counter() - start, "new_edges": len(pairs)}

    # --- attaching query points ----------------------------------------------
    def _attach(self, z, what, x=None):
        """A node index if z is a node, else [(node, weight)] to its k nearest.

        x: z's decoding, if the caller has it (it is decoded once, not per edge).
        """
        dist, idx = self.tree.query(z, min(self.k, len(self.nodes)))
        dist, idx = np.atleast_1d(dist), np.atleast_1d(idx)
        if dist[0] <= SAME_POINT:
            return int(idx[0])
        self._refuse_outside(dist[0], what)
        x = self._decode(z[None]) if x is None else x[None]
        w = self._edge_lengths(np.repeat(z[None], len(idx), 0), self.nodes[idx],
                               xa=x.expand(len(idx), -1), xb=self.node_x[idx])
        return list(zip(idx.tolist(), w.tolist()))

    def _refuse_outside(self, distance, what):
        if distance > self.outside_factor * self.reach:
            raise GraphError("%s is far outside the data: nearest node at latent distance "
                             "%.3g, more than %g x the graph's neighbour reach %.3g"
                             % (what, distance, self.outside_factor, self.reach))

    def check_inside(self, z, what="point"):
        """GraphError unless z is finite, of the right dimension and near the data."""
        z = check_point(z, self.dim, what)
        self._refuse_outside(self.tree.query(z)[0], what)
        return z

    def _direct_weight(self, za, zb, attach_a, xa, xb):
        """Weight of a direct edge between two query points close enough to share one."""
        if isinstance(attach_a, int):
            return None
        radius = np.linalg.norm(self.nodes[attach_a[-1][0]] - za)
        if np.linalg.norm(zb - za) > radius:
            return None
        return float(self._edge_lengths(za[None], zb[None], xa[None], xb[None])[0])

    # --- queries ----------------------------------------------------------------
    def shortest_path(self, z_start, z_goal, method="astar"):
        """Geodesic from z_start to z_goal; method 'astar' or 'dijkstra' (h = 0)."""
        t0 = time.perf_counter()
        zs = check_point(z_start, self.dim, "start")
        zg = check_point(z_goal, self.dim, "goal")
        if np.array_equal(zs, zg):
            return Geodesic(np.stack([zs, zg]), 0.0, "graph",
                            {"time": time.perf_counter() - t0, "nodes_expanded": 0})
        xs, xg = self._decode(np.stack([zs, zg]))   # both ends decoded once, in one batch
        s_att, g_att = self._attach(zs, "start", xs), self._attach(zg, "goal", xg)
        n = len(self.nodes)
        source = s_att if isinstance(s_att, int) else n
        target = g_att if isinstance(g_att, int) else n + 1
        start_edges = [] if isinstance(s_att, int) else list(s_att)
        into_goal = {} if isinstance(g_att, int) else dict(g_att)
        direct = self._direct_weight(zs, zg, s_att, xs, xg) if target == n + 1 else None
        if direct is not None:
            start_edges.append((target, direct))
        if direct is None:
            self._check_connected(s_att, g_att)
        if method == "astar":
            # A goal node's stored decoding keeps the heuristic exactly consistent.
            x_goal = self._node_x_np[g_att] if isinstance(g_att, int) else \
                xg.double().cpu().numpy()
            h = np.sqrt(((self._node_x_np - x_goal) ** 2).sum(1)).tolist() + [0.0, 0.0]
        elif method == "dijkstra":
            h = [0.0] * (n + 2)
        else:
            raise ValueError("method must be 'astar' or 'dijkstra'")
        length, node_path, expanded = self._search(source, target, start_edges, into_goal, h)
        if node_path is None:  # only reachable if components disagree with edges
            raise GraphError("no path between start and goal in the graph")
        points = np.array([zs if v == n else zg if v == n + 1 else self.nodes[v]
                           for v in node_path])
        points[0], points[-1] = zs, zg
        return Geodesic(points, float(length), "graph",
                        {"time": time.perf_counter() - t0, "nodes_expanded": expanded,
                         "node_path": [v for v in node_path if v < n]})

    def _check_connected(self, s_att, g_att):
        comps = lambda att: {self.components[att]} if isinstance(att, int) else \
            {self.components[v] for v, _ in att}  # noqa: E731
        if not comps(s_att) & comps(g_att):
            raise GraphError("start and goal lie in different connected components of the "
                             "latent graph (%d components with k=%d): no geodesic between "
                             "them; add data between them or raise k"
                             % (self.n_components, self.k))

    def _search(self, source, target, start_edges, into_goal, h):
        """A* (Dijkstra when h = 0) over the CSR lists plus the query's edges.

        Flat lists instead of dicts and locals bound once: this loop is the
        query's hot path.
        """
        indptr, indices, data = self._indptr, self._indices, self._data
        n = len(self.nodes)
        best = [float("inf")] * (n + 2)
        parent = [-1] * (n + 2)
        closed = bytearray(n + 2)
        best[source] = 0.0
        heap = [(h[source], 0.0, source)]
        pop, push = heapq.heappop, heapq.heappush
        expanded = 0
        while heap:
            _, g, u = pop(heap)
            if closed[u]:
                continue
            if u == target:
                path = [u]
                while u != source:
                    u = parent[u]
                    path.append(u)
                return g, path[::-1], expanded
            closed[u] = 1
            expanded += 1
            if u < n:
                lo, hi = indptr[u], indptr[u + 1]
                neighbours = zip(indices[lo:hi], data[lo:hi])
                if u in into_goal:
                    neighbours = list(neighbours) + [(n + 1, into_goal[u])]
            else:
                neighbours = start_edges
            for v, w in neighbours:
                cost = g + w
                if cost < best[v]:
                    best[v] = cost
                    parent[v] = u
                    push(heap, (cost + h[v], cost, v))
        return None, None, expanded

    def distances(self, sources, targets):
        """Graph distances between two sets of latent points: (S, T) array.

        Query points are attached like shortest_path's (but connect only through
        nodes); one multi-source Dijkstra (scipy.sparse.csgraph) answers all
        pairs. inf = disconnected.
        """
        sources = to_numpy(sources).reshape(-1, self.dim)
        targets = to_numpy(targets).reshape(-1, self.dim)
        points = np.vstack([sources, targets])
        n = len(self.nodes)
        ids, rows, cols, weights = [], [], [], []
        next_id = n
        for p in points:
            att = self._attach(check_point(p, self.dim), "point")
            if isinstance(att, int):
                ids.append(att)
                continue
            ids.append(next_id)
            for v, w in att:
                rows.append(next_id), cols.append(v), weights.append(w)
            next_id += 1
        total = next_id
        i, j = self.edges[:, 0], self.edges[:, 1]
        all_r = np.r_[i, j, rows, cols]
        all_c = np.r_[j, i, cols, rows]
        all_w = np.r_[self.weights, self.weights, weights, weights]
        matrix = coo_matrix((all_w, (all_r, all_c)), shape=(total, total)).tocsr()
        src, dst = ids[:len(sources)], ids[len(sources):]
        dist = dijkstra(matrix, directed=True, indices=src)
        return dist[:, dst]

    # --- persistence --------------------------------------------------------------
    def save(self, path, model_id=""):
        """Write the built graph (npz) atomically, tagged with settings and model."""
        meta = {"version": FILE_VERSION, "k": self.k, "n_samples": self.n_samples,
                "model_id": model_id, "reach": self.reach,
                "outside_factor": self.outside_factor}
        tmp = path + ".tmp.npz"
        np.savez(tmp, nodes=self.nodes, edges=self.edges, weights=self.weights,
                 node_x=self._node_x_np, meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, decoder, k=None, n_samples=None, model_id=None, nodes=None):
        """Load a saved graph; GraphError if it was built for another model/settings."""
        try:
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(str(f["meta"]))
                arrays = {key: f[key] for key in ("nodes", "edges", "weights", "node_x")}
        except Exception as e:
            raise GraphError("graph file %s is unreadable: %s" % (path, e)) from None
        if meta.get("version") != FILE_VERSION:
            raise GraphError("graph file %s has version %r" % (path, meta.get("version")))
        for name, want in (("k", k), ("n_samples", n_samples), ("model_id", model_id)):
            if want is not None and meta[name] != want:
                raise GraphError("graph file %s was built with %s=%r, not %r"
                                 % (path, name, meta[name], want))
        if nodes is not None and not np.array_equal(to_numpy(nodes), arrays["nodes"]):
            raise GraphError("graph file %s was built on other nodes" % path)
        graph = cls(decoder, arrays["nodes"], meta["k"], meta["n_samples"],
                    outside_factor=meta["outside_factor"], _build=False)
        device, dtype = decoder_device_dtype(decoder)
        graph.node_x = torch.as_tensor(arrays["node_x"], device=device,
                                       dtype=dtype or torch.float64)
        probe = graph._decode(graph.nodes[:16]).double().cpu().numpy()
        scale = 1e-4 * (1.0 + np.abs(arrays["node_x"][:16]).max())
        if not np.allclose(probe, arrays["node_x"][:16], atol=scale):
            raise GraphError("graph file %s was built for another decoder" % path)
        graph.tree = cKDTree(graph.nodes)
        graph.reach = meta["reach"]
        graph._set_edges(arrays["edges"], arrays["weights"])
        return graph
