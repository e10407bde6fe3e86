"""Graph-based geodesics (Chen et al., ICANN 2019).

Nodes are latent points (the posterior means of the data); each is joined to
its k nearest latent neighbours (scipy cKDTree), and each undirected edge is
weighted once by the decoded length of its straight latent segment with
`n_samples` points. Components that kNN leaves apart (one recorded activity per
component, typically) are joined by bridge edges: a minimum spanning tree over
the components through their nearest cross-component pairs, each weighted by
its decoded length. A bridge crosses a gap in the data, so paths count them.

Queries run scipy's compiled Dijkstra from the start (a query point joins as one
extra row). A* with the heuristic ||f(z_v) - f(z_goal)|| (method="astar") returns
the same path: the heuristic never overestimates a decoded polyline's length
(triangle inequality). It is kept as the reference, but under the data-aware
metric that bound is loose (the variance term is not in it), A* settles most of
the graph anyway, and in Python that is ten times slower. The node path
is then shortened (shortcuts by direct segments, a few energy-relaxation
steps) with the straight line as a candidate; the shortest under one measure
is returned.
"""
import heapq
import json
import os
import time
from math import dist

import numpy as np
import torch
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from .curves import (Geodesic, best_candidate, check_point, measure, relax,
                     segment_lengths, shortcut, to_numpy)
from .geometry import Decoder, Points, as_points, decode, decoder_device_dtype
from .errors import ConfigError, GraphError, is_number

__all__ = ["Geodesic", "GraphError", "LatentGraph", "check_point", "to_numpy"]

MIN_WEIGHT = 1e-12   # csgraph drops zero weights; duplicate nodes still connect
SAME_POINT = 1e-9    # latent distance under which a query point *is* a node
FILE_VERSION = 2
BRIDGE_CANDIDATES = 4   # x k neighbours searched for a cross-component pair first
# With few components (separate skills, gaps between them) each one's bridge is the
# Riemannian-shortest of up to BRIDGE_TRIALS measured pairs, not the latent-nearest:
# the encoder may put a gap's two ends far apart while other parts lie close.
FEW_COMPONENTS = 16
DISTANCE_BLOCK = 1 << 22   # distances held at once by distances(): 32 MB of float64
BRIDGE_TRIALS = 256
LANDMARKS = 8   # nodes whose distances to all others bound a query's distance from above
# Graph paths are not energy-relaxed by default: under the data-aware metric a relaxed
# path is a little shorter but strays further from the data (arm: 0.073 against 0.054
# rad median distance to the recorded poses) and costs three times the query; the
# ~nn_geodesic refinement is the one that relaxes.
RELAX_ITERATIONS = 0


def _walk(parent, node, root):
    """Nodes from `node` back to `root` along a predecessor row."""
    path = [int(node)]
    while path[-1] != root:
        path.append(int(parent[path[-1]]))
    return path




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


class LatentGraph:
    def __init__(self, decoder: Decoder, nodes: Points, k: int = 10, n_samples: int = 10,
                 batch_size=65536, outside_factor=3.0, relax_iterations=RELAX_ITERATIONS,
                 _build=True):
        """decoder: callable (B, Nz) -> (B, Nx); nodes: (N, Nz) latent points."""
        if int(k) < 1 or int(n_samples) < 2:
            raise ConfigError("k must be >= 1 and n_samples >= 2")
        self.decoder = decoder
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
        if _build:
            start = time.perf_counter()
            self.tree = cKDTree(nodes)
            self.node_x = self._decode(nodes)
            pairs = self._knn_pairs()
            weights = self._edge_lengths(nodes[pairs[:, 0]], nodes[pairs[:, 1]],
                                         self.node_x[pairs[:, 0]], self.node_x[pairs[:, 1]])
            self._set_edges(pairs, weights, np.zeros(len(pairs), bool))
            self._connect()
            self.build_stats = {"time": time.perf_counter() - start, "edges": len(self.edges),
                                "bridges": int(self.is_bridge.sum())}

    @property
    def dim(self):
        return self.nodes.shape[1]

    def __len__(self):
        return len(self.nodes)

    # --- building ---------------------------------------------------------
    def _knn_pairs(self):
        """Unique kNN pairs over all nodes; also sets the graph's reach and step."""
        workers = -1 if len(self.nodes) > 5000 else 1   # threads only pay off when large
        dist, idx = self.tree.query(self.nodes, min(self.k + 1, len(self.nodes)),
                                    workers=workers)
        # Scale for "far outside the data": the typical k-th neighbour distance.
        self.reach = float(np.percentile(dist[:, -1], 99))
        # Latent resolution of every measure: an edge's sample spacing.
        self.step = max(float(np.median(dist[:, -1])) / (self.n_samples - 1), 1e-12)
        return unique_pairs(idx, len(self.nodes), dist)

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

    def _set_edges(self, pairs, weights, is_bridge):
        self.edges, self.weights, self.is_bridge = pairs, weights, is_bridge
        n = len(self.nodes)
        i, j = pairs[:, 0], pairs[:, 1]
        self.matrix = coo_matrix((np.r_[weights, weights], (np.r_[i, j], np.r_[j, i])),
                                 shape=(n, n)).tocsr()
        self.n_components, self.components = connected_components(self.matrix, directed=False)
        self._node_x_np = self.node_x.double().cpu().numpy()
        # Python-object views for the search's hot loop, filled as queries reach nodes.
        self._adjacency = _Lazy(lambda u: list(zip(
            self.matrix.indices[self.matrix.indptr[u]:self.matrix.indptr[u + 1]].tolist(),
            self.matrix.data[self.matrix.indptr[u]:self.matrix.indptr[u + 1]].tolist())))
        self._rows = _Lazy(lambda v: self._node_x_np[v].tolist())
        self._bridge_keys = {(int(a), int(b)) for a, b in pairs[is_bridge]}
        self._landmark_dist = None
        self._both_ways = (np.r_[i, j], np.r_[j, i], np.r_[weights, weights])

    def _connect(self):
        """Bridge the kNN graph's components into one (Boruvka over components, each
        bridge the shortest measured of its component's candidate pairs)."""
        if self.n_components == 1:
            return
        n = len(self.nodes)
        _, near = self.tree.query(self.nodes, min(n, BRIDGE_CANDIDATES * self.k + 1))
        while self.n_components > 1:
            labels = self.components
            cross = labels[near] != labels[:, None]
            first = near[np.arange(n), cross.argmax(1)]
            dist = np.where(cross.any(1), np.linalg.norm(self.nodes[first] - self.nodes, axis=1),
                            np.inf)
            trials = np.array([t for c in range(self.n_components)
                               for t in self._bridge_trials(labels, c, dist, first)],
                              dtype=np.int64)
            weights = np.maximum(segment_lengths(self.decoder, self.nodes[trials[:, 0]],
                                                 self.nodes[trials[:, 1]], self.step, cap=512),
                                 MIN_WEIGHT)
            pairs, kept = self._forest(labels, trials, weights)
            self._set_edges(np.vstack([self.edges, pairs]), np.r_[self.weights, kept],
                            np.r_[self.is_bridge, np.ones(len(pairs), bool)])

    def _bridge_trials(self, labels, c, dist, first):
        """Candidate (member of c, node outside c) pairs for component c's bridge: the
        latent-nearest pair; with few components also up to BRIDGE_TRIALS members,
        spread over the component, each with its nearest outside node."""
        members = np.flatnonzero(labels == c)
        i = members[np.argmin(dist[members])]
        found = np.isfinite(dist[i])
        if found and self.n_components > FEW_COMPONENTS:
            return [(i, first[i])]
        others = np.flatnonzero(labels != c)
        outside = cKDTree(self.nodes[others])
        spread = members[np.unique(np.linspace(0, len(members) - 1, BRIDGE_TRIALS).astype(int))]
        if found:
            trials = [(i, first[i])]
        else:   # every near neighbour is inside: the latent-nearest pair, exactly
            d, j = outside.query(self.nodes[members])
            trials = [(members[np.argmin(d)], others[j[np.argmin(d)]])]
        return trials + list(zip(spread, others[outside.query(self.nodes[spread])[1]]))

    @staticmethod
    def _forest(labels, trials, weights):
        """Each component's shortest trial, kept only where it joins two groups not
        joined yet (shortest first), so the bridges form a forest."""
        best = {}
        for (a, b), w in zip(trials, weights):
            c = labels[a]
            if c not in best or w < best[c][0]:
                best[c] = (w, min(a, b), max(a, b))
        group = {c: c for c in np.unique(labels)}

        def root(c):
            while group[c] != c:
                c = group[c]
            return c
        pairs, kept = [], []
        for w, a, b in sorted(set(best.values())):
            ra, rb = root(labels[a]), root(labels[b])
            if ra != rb:
                group[ra] = rb
                pairs.append((a, b))
                kept.append(w)
        return np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(kept)

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
        pairs = self._knn_pairs()
        pairs = pairs[pairs[:, 1] >= old_n]
        weights = self._edge_lengths(self.nodes[pairs[:, 0]], self.nodes[pairs[:, 1]],
                                     self.node_x[pairs[:, 0]], self.node_x[pairs[:, 1]])
        self._set_edges(np.vstack([self.edges, pairs]), np.r_[self.weights, weights],
                        np.r_[self.is_bridge, np.zeros(len(pairs), bool)])
        self._connect()
        return {"time": time.perf_counter() - start, "new_edges": len(pairs)}

    # --- attaching query points ----------------------------------------------
    def _attach(self, z, what, x=None):
        """A node index if z is a node, else [(node, weight)] to its k nearest.

        x: z's decoding, if the caller has it (it is decoded once, not per edge).
        """
        return self._attach_all(z[None], [what], None if x is None else x[None])[0]

    def _attach_all(self, z, whats, x=None):
        """_attach for each row of z, with all new edges measured in one batch."""
        dist, idx = self.tree.query(z, min(self.k, len(self.nodes)))
        dist, idx = dist.reshape(len(z), -1), idx.reshape(len(z), -1)
        loose = [i for i in range(len(z)) if dist[i, 0] > SAME_POINT]
        for i in loose:
            self._refuse_outside(dist[i, 0], whats[i])
        out = [int(idx[i, 0]) for i in range(len(z))]
        if not loose:
            return out
        x = self._decode(z[loose]) if x is None else x[loose]
        width = idx.shape[1]
        ends = idx[loose].ravel()
        w = self._edge_lengths(np.repeat(z[loose], width, 0), self.nodes[ends],
                               xa=x.repeat_interleave(width, 0), xb=self.node_x[ends])
        for row, i in enumerate(loose):
            out[i] = list(zip(idx[i].tolist(), w[row * width:(row + 1) * width].tolist()))
        return out

    def _refuse_outside(self, distance, what):
        if distance > self.outside_factor * self.reach:
            raise GraphError("%s is far outside the data: nearest node at latent distance "
                             "%.3g, more than %g x the graph's neighbour reach %.3g"
                             % (what, distance, self.outside_factor, self.reach))

    def check_inside(self, z, what="point"):
        """GraphError unless z is finite, of the right dimension and near the data."""
        z = check_point(z, self.dim, what, GraphError)
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
    def shortest_path(self, z_start: Points, z_goal: Points, method="dijkstra",
                      shorten=True) -> Geodesic:
        """Geodesic from z_start to z_goal.

        method: 'dijkstra' (compiled) or 'astar' (the Python reference; same
        path). shorten=False returns the search's node path itself; otherwise
        the shortest of that path, its shortcut, the relaxed shortcut and the
        straight line, all measured at the graph's resolution (self.measure).
        """
        t0 = time.perf_counter()
        zs = check_point(z_start, self.dim, "start", GraphError)
        zg = check_point(z_goal, self.dim, "goal", GraphError)
        if np.array_equal(zs, zg):
            return Geodesic(np.stack([zs, zg]), 0.0, "graph",
                            {"time": time.perf_counter() - t0, "nodes_expanded": 0,
                             "bridges": 0})
        points, hops, stats = self._node_path(zs, zg, method)
        stats["graph_length"] = float(sum(hops))
        if not shorten:
            stats["time"] = time.perf_counter() - t0
            return Geodesic(points, stats["graph_length"], "graph", stats)
        short = shortcut(self.decoder, points, hops, self.step)
        candidates = [("graph", points), ("shortcut", short), ("straight", np.stack([zs, zg]))]
        if self.relax_iterations > 0 and len(short) > 2:
            relaxed, _ = relax(self.decoder, short, self.step, knots=16,
                               iterations=self.relax_iterations)
            candidates.append(("relaxed", relaxed))
        name, best, length, lengths = best_candidate(self.decoder, candidates, self.step)
        stats.update(candidate=name, raw_length=lengths["graph"],
                     straight_length=lengths["straight"], time=time.perf_counter() - t0)
        return Geodesic(best, length, "graph", stats)

    def measure(self, points: Points) -> float:
        """Decoded length of a latent polyline at the graph's resolution."""
        return measure(self.decoder, points, self.step)

    def _node_path(self, zs, zg, method):
        """A* (or Dijkstra) between two query points: (points, hop lengths, stats)."""
        xs, xg = self._decode(np.stack([zs, zg]))   # both ends decoded once, in one batch
        s_att, g_att = self._attach_all(np.stack([zs, zg]), ["start", "goal"],
                                        torch.stack([xs, xg]))
        n = len(self.nodes)
        source = s_att if isinstance(s_att, int) else n
        target = g_att if isinstance(g_att, int) else n + 1
        start_edges = [] if isinstance(s_att, int) else list(s_att)
        into_goal = {} if isinstance(g_att, int) else dict(g_att)
        direct = self._direct_weight(zs, zg, s_att, xs, xg) if target == n + 1 else None
        if direct is not None:
            start_edges.append((target, direct))
        if method == "dijkstra":
            found = self._dijkstra(source, target, start_edges, into_goal)
        elif method == "astar":
            # A goal node's stored decoding keeps the heuristic exactly consistent.
            x_goal = self._node_x_np[g_att] if isinstance(g_att, int) else \
                xg.double().cpu().numpy()
            found = self._search(source, target, start_edges, into_goal, x_goal)
        else:
            raise ConfigError("method must be 'dijkstra' or 'astar'")
        if found is None:   # a connected graph always has one; a corrupt one may not
            raise GraphError("no path between start and goal in the graph")
        node_path, hops, expanded = found
        points = np.array([zs if v == n else zg if v == n + 1 else self.nodes[v]
                           for v in node_path])
        points[0], points[-1] = zs, zg
        nodes = [v for v in node_path if v < n]
        bridges = sum((min(a, b), max(a, b)) in self._bridge_keys
                      for a, b in zip(nodes[:-1], nodes[1:]))
        return points, hops, {"nodes_expanded": expanded, "node_path": nodes,
                              "bridges": bridges}

    def _dijkstra(self, source, target, start_edges, into_goal):
        """Bidirectional Dijkstra (scipy's, compiled) over the graph plus the query's
        edges. Returns (node path, hop weights, nodes settled) or None.

        Both searches stop at half an upper bound U of the distance D, read off
        landmark distances; a shortest path's middle edge (u, v) then has both
        ends settled, so D = min over edges of d_s(u) + w + d_g(v). Two balls of
        radius U/2 hold a fraction of the nodes one search to the goal settles.
        """
        n = len(self.nodes)
        if source == target:   # both ends on one node
            return [source], [], 1
        start_nodes = [(v, w) for v, w in start_edges if v < n]
        goal_nodes = list(into_goal.items())
        matrix = self._with_rows(start_nodes if source == n else [],
                                 goal_nodes if target == n + 1 else [])
        direct = min([w for v, w in start_edges if v == target], default=np.inf)
        bound = min(self._upper_bound(source, target, start_nodes, goal_nodes), direct)
        limit = np.inf if not np.isfinite(bound) else 0.5 * bound * (1 + 1e-9) + 1e-12
        ends = [source, target]
        dist_to, parent = dijkstra(matrix, directed=True, indices=ends, limit=limit,
                                   return_predecessors=True)
        u, v, w = self._meeting_edge(dist_to, source, target, start_nodes, goal_nodes)
        cost = dist_to[0, u] + w + dist_to[1, v] if u >= 0 else np.inf
        if direct <= cost:
            cost, u, v, w = direct, source, target, direct
        if not np.isfinite(cost):
            return None
        forward, backward = _walk(parent[0], u, source)[::-1], _walk(parent[1], v, target)
        hops = [float(dist_to[0, b] - dist_to[0, a]) for a, b in zip(forward[:-1], forward[1:])]
        hops += [float(w)]
        hops += [float(dist_to[1, a] - dist_to[1, b]) for a, b in zip(backward[:-1], backward[1:])]
        return forward + backward, hops, int(np.isfinite(dist_to).any(0).sum())

    def _with_rows(self, start_nodes, goal_nodes):
        """The graph's CSR with rows n (the start's out-edges) and n + 1 (the goal's)."""
        n, m = len(self.nodes), self.matrix
        cols = [v for v, _ in start_nodes] + [v for v, _ in goal_nodes]
        weights = [w for _, w in start_nodes] + [w for _, w in goal_nodes]
        indptr = np.r_[m.indptr, m.indptr[-1] + len(start_nodes), m.indptr[-1] + len(cols)]
        return csr_matrix((np.r_[m.data, weights], np.r_[m.indices, np.array(cols, dtype=int)]
                           .astype(m.indices.dtype), indptr), shape=(n + 2, n + 2))

    def _upper_bound(self, source, target, start_nodes, goal_nodes):
        """The shortest of the paths through one landmark: an upper bound of D."""
        landmarks = self._landmarks()
        n = len(self.nodes)

        def to_landmarks(end, attached):
            if end < n:
                return landmarks[:, end]
            return np.min([w + landmarks[:, a] for a, w in attached], axis=0)
        return float(np.min(to_landmarks(source, start_nodes) + to_landmarks(target, goal_nodes)))

    def _landmarks(self):
        """(L, N) graph distances from LANDMARKS nodes spread by farthest-point sampling."""
        if self._landmark_dist is None:
            chosen, gap = [0], np.full(len(self.nodes), np.inf)
            for _ in range(min(LANDMARKS, len(self.nodes)) - 1):
                gap = np.minimum(gap, np.linalg.norm(self.nodes - self.nodes[chosen[-1]], axis=1))
                chosen.append(int(np.argmax(gap)))
            self._landmark_dist = dijkstra(self.matrix, directed=False, indices=chosen)
        return self._landmark_dist

    def _meeting_edge(self, dist_to, source, target, start_nodes, goal_nodes):
        """(u, v, w) minimising d_s(u) + w + d_g(v) over the graph's and the query's edges."""
        a, b, weights = self._both_ways
        u = np.r_[a, [source] * len(start_nodes), [v for v, _ in goal_nodes]].astype(int)
        v = np.r_[b, [x for x, _ in start_nodes], [target] * len(goal_nodes)].astype(int)
        w = np.r_[weights, [x for _, x in start_nodes], [x for _, x in goal_nodes]]
        total = dist_to[0, u] + w + dist_to[1, v]
        best = int(np.argmin(total)) if len(total) else -1
        if best < 0 or not np.isfinite(total[best]):
            return -1, -1, np.inf
        return int(u[best]), int(v[best]), float(w[best])

    def _search(self, source, target, start_edges, into_goal, x_goal):
        """A* over the graph plus the query's edges; Dijkstra when x_goal is None.

        Dicts instead of arrays of size N, and a heuristic computed only for the
        nodes reached: a query's cost does not grow with the graph. Closed nodes
        are never reopened, so any weights (even corrupt ones) terminate.
        Returns (node path, hop weights, nodes expanded) or None.
        """
        n = len(self.nodes)
        adjacency, rows = self._adjacency, self._rows
        h = {n: 0.0, n + 1: 0.0}
        x_goal = None if x_goal is None else list(map(float, x_goal))
        best, parent, closed = {source: 0.0}, {source: (-1, 0.0)}, set()
        h_source = 0.0 if x_goal is None or source >= n else dist(rows[source], x_goal)
        heap = [(h_source, 0.0, source)]
        pop, push, inf = heapq.heappop, heapq.heappush, float("inf")
        best_get, h_get = best.get, h.get
        while heap:
            _, g, u = pop(heap)
            if u in closed:
                continue
            if u == target:
                path, hops = [u], []
                while u != source:
                    u, w = parent[u]
                    path.append(u), hops.append(w)
                return path[::-1], hops[::-1], len(closed)
            closed.add(u)
            if u < n:
                neighbours = adjacency[u]
                if u in into_goal:
                    neighbours = neighbours + [(n + 1, into_goal[u])]
            else:
                neighbours = start_edges
            for v, w in neighbours:
                if v in closed:
                    continue
                cost = g + w
                if cost < best_get(v, inf):
                    best[v] = cost
                    parent[v] = (u, w)
                    hv = h_get(v)
                    if hv is None:
                        hv = h[v] = 0.0 if x_goal is None else dist(rows[v], x_goal)
                    push(heap, (cost + hv, cost, v))
        return None

    def distances(self, sources, targets):
        """Graph distances between two sets of latent points: (S, T) array.

        Query points are attached like shortest_path's (but connect only through
        nodes); one multi-source Dijkstra (scipy.sparse.csgraph) answers all
        pairs.
        """
        sources = to_numpy(sources).reshape(-1, self.dim)
        targets = to_numpy(targets).reshape(-1, self.dim)
        points = np.vstack([sources, targets])
        n = len(self.nodes)
        ids, rows, cols, weights = [], [], [], []
        next_id = n
        checked = np.array([check_point(p, self.dim, error=GraphError) for p in points])
        for att in self._attach_all(checked, ["point"] * len(checked)):
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
        # Sources in blocks: each block's Dijkstra holds (block, all nodes) distances.
        block = max(1, DISTANCE_BLOCK // total)
        return np.vstack([dijkstra(matrix, directed=True, indices=src[i:i + block])[:, dst]
                          for i in range(0, len(src), block)])

    # --- persistence --------------------------------------------------------------
    def save(self, path, model_id=""):
        """Write the built graph (npz) atomically, tagged with settings and model."""
        meta = {"version": FILE_VERSION, "k": self.k, "n_samples": self.n_samples,
                "model_id": model_id, "reach": self.reach, "step": self.step,
                "outside_factor": self.outside_factor}
        tmp = path + ".tmp.npz"
        np.savez(tmp, nodes=self.nodes, edges=self.edges, weights=self.weights,
                 is_bridge=self.is_bridge, node_x=self._node_x_np,
                 meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, decoder, k=None, n_samples=None, model_id=None, nodes=None):
        """Load a saved graph; GraphError if it was built for another model or
        settings, or if its contents are not a valid graph (a tampered or
        damaged file must not reach the search)."""
        try:
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(str(f["meta"]))
                arrays = {key: f[key] for key in
                          ("nodes", "edges", "weights", "is_bridge", "node_x")}
        except Exception as e:
            raise GraphError("graph file %s is unreadable: %s" % (path, e)) from None
        if not isinstance(meta, dict) or meta.get("version") != FILE_VERSION:
            raise GraphError("graph file %s has version %r" % (path, meta.get("version")
                                                               if isinstance(meta, dict) else None))
        for name, want in (("k", k), ("n_samples", n_samples), ("model_id", model_id)):
            if want is not None and meta.get(name) != want:
                raise GraphError("graph file %s was built with %s=%r, not %r"
                                 % (path, name, meta.get(name), want))
        if nodes is not None and not np.array_equal(to_numpy(nodes), arrays["nodes"]):
            raise GraphError("graph file %s was built on other nodes" % path)
        _validate(path, meta, arrays)
        graph = cls(decoder, arrays["nodes"], meta["k"], meta["n_samples"],
                    outside_factor=meta["outside_factor"], _build=False)
        device, dtype = decoder_device_dtype(decoder)
        graph.node_x = torch.as_tensor(arrays["node_x"], device=device,
                                       dtype=dtype or torch.float64)
        probe = graph._decode(graph.nodes[:16]).double().cpu().numpy()
        scale = 1e-4 * (1.0 + np.abs(arrays["node_x"][:16]).max())
        if probe.shape != arrays["node_x"][:16].shape or \
                not np.allclose(probe, arrays["node_x"][:16], atol=scale):
            raise GraphError("graph file %s was built for another decoder" % path)
        graph.tree = cKDTree(graph.nodes)
        graph.reach, graph.step = meta["reach"], meta["step"]
        graph._set_edges(arrays["edges"].astype(np.int64), arrays["weights"],
                         arrays["is_bridge"].astype(bool))
        if graph.n_components != 1:
            raise GraphError("graph file %s holds a disconnected graph" % path)
        return graph


class _Lazy(dict):
    """A dict that computes a missing key once (then a plain C-level lookup)."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value


def _validate(path, meta, arrays):
    """GraphError unless the arrays form a graph the search can trust."""
    nodes, edges, weights = arrays["nodes"], arrays["edges"], arrays["weights"]
    n = len(nodes)
    problems = []
    if nodes.ndim != 2 or n < 2 or not np.isfinite(nodes).all():
        problems.append("nodes are not a finite (N >= 2, Nz) array")
    if arrays["node_x"].ndim != 2 or len(arrays["node_x"]) != n \
            or not np.isfinite(arrays["node_x"]).all():
        problems.append("node decodings do not match the nodes")
    if edges.ndim != 2 or edges.shape[1:] != (2,) or not np.issubdtype(edges.dtype, np.integer):
        problems.append("edges are not an (E, 2) integer array")
    elif len(edges) and (edges.min() < 0 or edges.max() >= n):
        problems.append("edge indices outside 0..%d" % (n - 1))
    if weights.shape != (len(edges),) or arrays["is_bridge"].shape != (len(edges),):
        problems.append("edge weights or bridge flags do not match the edges")
    elif not (np.isfinite(weights).all() and (weights > 0).all()):
        problems.append("edge weights that are not finite and positive")
    for key in ("reach", "step", "outside_factor"):
        value = meta.get(key)
        if not is_number(value) or value <= 0:
            problems.append("%s = %r" % (key, value))
    if problems:
        raise GraphError("graph file %s is invalid: %s" % (path, "; ".join(problems)))
