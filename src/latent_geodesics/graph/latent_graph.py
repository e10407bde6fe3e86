"""Graph-based geodesics (Chen et al., ICANN 2019).

The graph is built by graph_build (kNN over the latent points, edges weighted by
their decoded lengths, components bridged by graph_bridges). A query attaches its
ends to their nearest nodes, searches (graph_search: A* with landmark bounds run
by scipy's compiled Dijkstra; a Python A* as the reference), then shortens the
node path (shortcuts by direct segments, optional energy relaxation) with the
straight line as a candidate; the shortest under one measure is returned. Files: graph_files.
"""
import time

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from latent_geodesics.errors import ConfigError, GraphError
from latent_geodesics.geometry.curves import (
    Geodesic,
    PathStats,
    best_candidate,
    check_point,
    relax,
    shortcut_segments,
    shortest_chain,
    to_numpy,
)
from latent_geodesics.geometry.metric import MAX_MEASURE_POINTS, Points, segment_pieces
from latent_geodesics.graph.build import EDGE_PIECES, RELAX_ITERATIONS, KnnGraph, unique_pairs
from latent_geodesics.graph.files import load_graph, save_graph
from latent_geodesics.graph.lazy import lazy_node_path
from latent_geodesics.graph.search import GraphSearch

__all__ = ["Geodesic", "GraphError", "LatentGraph", "RELAX_ITERATIONS", "check_point",
           "to_numpy", "unique_pairs"]

SAME_POINT = 1e-9    # latent distance under which a query point *is* a node
DISTANCE_BLOCK = 1 << 22   # distances held at once by distances(): 32 MB of float64
# The shortcut's first, coarse pass: jumps over at most SHORTCUT_WINDOW hops of the
# node path, each measured with at most SHORTCUT_PIECES pieces; the chain it finds is
# measured again at the full resolution and corrected (measured_chain). Measured on
# the arm, curved-skill and laikago data against 6 hops of 8 pieces without the
# correction: as near the demonstrated motions on average on all three, served paths
# 0.2-4 % shorter on average, half the points decoded.
SHORTCUT_WINDOW, SHORTCUT_PIECES = 3, 4


class LatentGraph(KnnGraph):
    """A kNN graph over latent points that answers geodesic queries: attaching
    query points, the search, shortening, many-to-many distances, files."""

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
                      shorten=True, world=None) -> Geodesic:
        """Geodesic from z_start to z_goal.

        method: 'dijkstra' (compiled) or 'astar' (the Python reference; same
        path). shorten=False returns the search's node path itself; otherwise
        the shortest of that path, its shortcut, the relaxed shortcut and the
        straight line, all measured at the graph's resolution (self.measure).
        world: one request in the robot's world (serving/world.py's RequestWorld):
        the path then keeps clear of its objects (graph/lazy.py) and every candidate
        is measured with the world's metric and checked.
        """
        t0 = time.perf_counter()
        zs = check_point(z_start, self.dim, "start", GraphError)
        zg = check_point(z_goal, self.dim, "goal", GraphError)
        if np.array_equal(zs, zg):
            return Geodesic(np.stack([zs, zg]), 0.0, "graph",
                            PathStats(time=time.perf_counter() - t0))
        if world is None:
            points, hops, stats = self._node_path(zs, zg, method)
        else:
            points, hops, stats = lazy_node_path(self, zs, zg, method, world)
        if not shorten:
            stats.time = time.perf_counter() - t0
            return Geodesic(points, float(sum(hops)), "graph", stats)
        candidates = shortening_candidates(self, points, hops, stats, world)
        if world is None:
            name, best, length, lengths = best_candidate(self.metric, candidates, self.step)
        else:
            name, best, length, lengths = shortest_clear(world, world.metric, candidates,
                                                         self.step)
        stats.candidate, stats.straight_length = name, lengths.get("straight", float("nan"))
        stats.time = time.perf_counter() - t0
        return Geodesic(best, length, "graph", stats)

    def measure(self, points: Points) -> float:
        """Decoded length of a latent polyline at the graph's resolution."""
        return self.metric.polyline_length(points, self.step)

    def search_over(self, keep, weights):
        """A search over the edges where keep is True, weighted by weights (E,): the
        graph as one scene of the robot's world leaves it (graph/lazy.py)."""
        edges, weights = self.edges[keep], np.asarray(weights)[keep]
        n = len(self.nodes)
        matrix = coo_matrix((np.r_[weights, weights], (np.r_[edges[:, 0], edges[:, 1]],
                                                        np.r_[edges[:, 1], edges[:, 0]])),
                            shape=(n, n)).tocsr()
        return GraphSearch(self.nodes, matrix, edges, weights, self._node_x_np)

    def _node_path(self, zs, zg, method, search=None, skip=frozenset(), blocked=None):
        """Dijkstra (or the A* reference) between two query points:
        (points, hop lengths, PathStats). search: another edge set's search (the
        world's); skip: query edges (end, node) not to use (end n: start, n + 1: goal);
        blocked: node pairs of the search's edges not to use, or a boolean mask over
        its CSR data (dijkstra only)."""
        search = search or self.search
        ends = np.stack([zs, zg])
        # Ends that are nodes need no decoding (their edges and decodings are stored);
        # otherwise both are decoded once, in one batch.
        x = None if (self.tree.query(ends)[0] <= SAME_POINT).all() else self._decode(ends)
        s_att, g_att = self._attach_all(ends, ["start", "goal"], x)
        n = len(self.nodes)
        source = s_att if isinstance(s_att, int) else n
        target = g_att if isinstance(g_att, int) else n + 1
        start_edges = [] if isinstance(s_att, int) else \
            [(v, w) for v, w in s_att if (n, v) not in skip]
        into_goal = {} if isinstance(g_att, int) else \
            {v: w for v, w in g_att if (n + 1, v) not in skip}
        direct = self._direct_weight(zs, zg, s_att, x[0], x[1]) if target == n + 1 else None
        if direct is not None and (n, n + 1) not in skip:
            start_edges.append((target, direct))
        if method == "dijkstra":
            found = search.dijkstra(source, target, start_edges, into_goal,
                                    _blocked_positions(search, blocked))
        elif method == "astar":
            # A goal node's stored decoding keeps the heuristic exactly consistent.
            x_goal = self._node_x_np[g_att] if isinstance(g_att, int) else \
                x[1].double().cpu().numpy()
            found = search.astar(source, target, start_edges, into_goal, x_goal)
        else:
            raise ConfigError("method must be 'dijkstra' or 'astar'")
        if found is None:   # a connected graph always has one; a corrupt one may not
            raise GraphError("no path between start and goal in the graph")
        node_path, hops, expanded = found
        # Only the ends can be query points (n, n + 1): they are replaced by zs, zg.
        points = self.nodes[np.minimum(node_path, n - 1)]
        points[0], points[-1] = zs, zg
        nodes = [v for v in node_path if v < n]
        steps = np.array(nodes)
        lo, hi = np.minimum(steps[:-1], steps[1:]), np.maximum(steps[:-1], steps[1:])
        bridges = sum(map(self._bridge_keys.__contains__, zip(lo.tolist(), hi.tolist())))
        return points, hops, PathStats(nodes_expanded=expanded, node_path=nodes,
                                       bridges=bridges, query_path=list(node_path))

    def distances(self, sources, targets, edges=None, weights=None):
        """Graph distances between two sets of latent points: (S, T) array.

        Query points are attached like shortest_path's (but connect only through
        nodes); one multi-source Dijkstra (scipy.sparse.csgraph) answers all
        pairs. edges, weights: another edge set (the graph as a scene of the robot's
        world leaves it); inf where no path is left.
        """
        edges = self.edges if edges is None else edges
        weights_of_edges = self.weights if weights is None else weights
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
        i, j = edges[:, 0], edges[:, 1]
        all_r = np.r_[i, j, rows, cols]
        all_c = np.r_[j, i, cols, rows]
        all_w = np.r_[weights_of_edges, weights_of_edges, weights, weights]
        matrix = coo_matrix((all_w, (all_r, all_c)), shape=(total, total)).tocsr()
        src, dst = ids[:len(sources)], ids[len(sources):]
        # Sources in blocks: each block's Dijkstra holds (block, all nodes) distances.
        block = max(1, DISTANCE_BLOCK // total)
        return np.vstack([dijkstra(matrix, directed=True, indices=src[i:i + block])[:, dst]
                          for i in range(0, len(src), block)])

    # --- persistence (graph_files) -------------------------------------------------
    def save(self, path, model_id=""):
        """Write the built graph (npz) atomically, tagged with settings and model."""
        save_graph(self, path, model_id)

    @classmethod
    def load(cls, path, decoder, k=None, n_samples=None, model_id=None, nodes=None,
             **options):
        """Load a saved graph; GraphError if it was built for another model or
        settings, or if its contents are not a valid graph. options: search
        settings (outside_factor, relax_iterations) to serve it with."""
        return load_graph(cls, path, decoder, options, k=k, n_samples=n_samples,
                          model_id=model_id, nodes=nodes)


# --- shortening a found path (module functions: LatentGraph stays one screenful) ---
def shortening_candidates(graph, points, hops, stats, world=None):
    """[(name, points, known segment lengths)]: the node path, its shortcut, the
    straight line and (relax_iterations > 0) the relaxed shortcut, measured with the
    graph's metric, or the world's (with its obstacle barrier) where there is one.

    What the graph has measured already is not measured again: the path's nodes'
    embeddings (node_x; in a world with the barrier the scene measured at the nodes)
    serve as the shortcut's segment ends, jumps between nodes that share an edge are
    not tried (the search found no shorter way through that edge; in a world, under
    its search's weights: a pruning that may miss a shortcut, never serve a longer
    path, as the chain is chosen again on measured lengths), and without a
    world the hops' edge weights are the graph candidate's lengths where they were
    measured at the full resolution (a world's search weighs its edges otherwise:
    its hops are measured). The shortcut's jumps are first measured coarsely
    (SHORTCUT_PIECES); the jumps of the chain found are then measured at the full
    resolution, in one embedding with the straight line and the hops not measured at
    it, and the chain is chosen again over the hops and those jumps alone: every
    candidate arrives measured, and the shortcut is never longer than the node path
    (a coarse measure often misjudges a jump)."""
    zs, zg = points[0], points[-1]
    ids = np.asarray(stats.query_path)
    metric = graph.metric if world is None else world.metric
    x = path_embedding(graph, points, ids)
    if world is None:
        hop_known = exact_hops(graph, points, ids)
    else:
        x, hop_known = world.path_embedding(x, ids), np.zeros(len(hops), dtype=bool)
    keep, coarse = shortcut_segments(
        metric, points, hops, graph.step, SHORTCUT_WINDOW, embedded=x,
        skip=lambda i, j: node_edges(graph, ids[i], ids[j]), pieces=SHORTCUT_PIECES)
    known, keep, short_known, straight = measured_chain(graph, metric, points, hops, x, keep,
                                                        coarse, hop_known)
    short = points[keep]
    candidates = [("graph", points, known), ("shortcut", short, short_known),
                  ("straight", np.stack([zs, zg]), straight)]
    if graph.relax_iterations > 0 and len(short) > 2:
        relaxed, _ = relax(metric, short, graph.step, knots=16,
                           iterations=graph.relax_iterations)
        candidates.append(("relaxed", relaxed, None))
    return candidates


def shortest_clear(world, metric, candidates, step):
    """best_candidate's answer among the candidates that keep the world's margin,
    checked in order of length (the graph path's edges are clear already): the
    shortest mostly is, and a longer one then needs no check. Every candidate's
    length is returned, the straight line's too (under the world's metric)."""
    _, _, _, lengths = best_candidate(metric, candidates, step)
    by_name = {name: pts for name, pts, *_ in candidates}
    # By length, the graph path first of equals; an unmeasurable (NaN) one is not served.
    ranked = sorted((lengths[n] if np.isfinite(lengths[n]) else np.inf, n != "graph", n)
                    for n in lengths)
    for length, _, name in ranked:
        if name == "graph" or (np.isfinite(length) and world.polyline_clear(by_name[name])):
            return name, by_name[name], lengths[name], lengths
    raise AssertionError("the graph candidate is always clear")


def measured_chain(graph, metric, points, hops, x, keep, coarse, hop_known):
    """(the hops' lengths, the shortcut's kept points and segment lengths, the straight
    line's length as a one-segment list), all at the full resolution under metric:
    the hops not measured at it (hop_known False), the jumps of the coarse chain
    (keep, coarse: shortcut_segments') and the straight line in one embedding (x: the
    points' embeddings), then the chain chosen again over the hops and those jumps."""
    jumps = np.flatnonzero(np.diff(keep) > 1)
    jump = coarse[jumps]   # NaN where the coarse measure was not the full one
    loose, fine = np.flatnonzero(~hop_known), jumps[np.isnan(jump)]
    ends = (np.r_[loose, keep[fine], 0], np.r_[loose + 1, keep[fine + 1], len(points) - 1])
    lengths = metric.segment_lengths(points[ends[0]], points[ends[1]], graph.step,
                                     MAX_MEASURE_POINTS, x[ends[0]], x[ends[1]])
    known = np.asarray(hops, dtype=np.float64).copy()
    known[loose] = lengths[:len(loose)]
    jump[np.isnan(jump)] = lengths[len(loose):-1]
    keep, short_known = shortest_chain(known, keep[jumps], keep[jumps + 1], jump)
    return known, keep, short_known, lengths[-1:]


def path_embedding(graph, points, ids):
    """The embeddings of a found path's points (ids: the search's path, query ends
    n and n + 1): the nodes' stored ones, the query ends' decoded."""
    n = len(graph.nodes)
    x = graph.node_x[torch.as_tensor(np.minimum(ids, n - 1), device=graph.node_x.device)]
    ends = np.flatnonzero(ids >= n)
    if len(ends):
        x[torch.as_tensor(ends, device=x.device)] = graph._decode(points[ends]).to(x.dtype)
    return x


def exact_hops(graph, points, ids):
    """Which hops' weights are the measure's own lengths: all but bridges (measured
    coarser) and hops long enough to have been capped at EDGE_PIECES."""
    lo, hi = np.minimum(ids[:-1], ids[1:]), np.maximum(ids[:-1], ids[1:])
    is_bridge = np.fromiter(map(graph._bridge_keys.__contains__, zip(lo.tolist(), hi.tolist())),
                            dtype=bool, count=len(lo))
    return ~is_bridge & (segment_pieces(points[:-1], points[1:], graph.step) <= EDGE_PIECES)


def node_edges(graph, a, b):
    """Mask of the node pairs (a[i], b[i]) joined by a graph edge (query ends: none)."""
    n = len(graph.nodes)
    inside = (a < n) & (b < n)
    out = np.zeros(len(a), dtype=bool)
    if inside.any():
        out[inside] = np.asarray(graph.matrix[a[inside], b[inside]]).ravel() != 0
    return out


def _blocked_positions(search, blocked):
    """What the search takes as `blocked`: a mask over its CSR data as it is, node
    pairs as their positions; None where nothing is blocked."""
    if blocked is None or not len(blocked):
        return None
    blocked = np.asarray(blocked)
    return blocked if blocked.dtype == bool else search.positions(blocked)
