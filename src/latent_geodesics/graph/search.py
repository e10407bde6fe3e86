"""Shortest node paths over a latent graph plus a query's own edges.

The served search is A* with landmark (ALT) lower bounds, compiled
(graph/compiled_astar.py). Graph distances d_L from LANDMARKS nodes (farthest-point
spread, computed on the first query) bound a node's remaining distance to the goal
g from below, pi(v) = max_L |d_L(v) - d_L(g)|, over the ACTIVE landmarks that bound
the query best; pi is consistent, so A* stops at the goal having expanded only the
nodes whose g + pi is below the distance (measured at N = 10,000: 7-14x fewer than
the bidirectional Dijkstra that came first).

A start that is not a node is joined to its attachments by the query's edges; a
goal that is not a node is reached through its attachments (an end joined by query
edges gets the bound |d_L(v) - c| + r, see Landmarks.of_end: it stays below the
distance even where the end is a shortcut between its neighbours). `blocked` (CSR
positions of edges a query must not use, e.g. those through an obstacle;
positions() maps node pairs) leaves those edges out: the lower bounds stay valid.
`astar` is the Python reference (heuristic ||f(z_v) - f(z_goal)||): both return
the same length.
"""
import heapq
from math import dist

import numpy as np
from scipy.sparse.csgraph import dijkstra

from latent_geodesics.graph.compiled_astar import alt_astar

LANDMARKS = 32    # nodes whose graph distances bound a query's from below
LANDMARK_BYTES = 64 << 20   # fewer landmarks (down to 8) on graphs where 32 take more
ACTIVE = 8        # landmarks used per query: those that bound its ends' distance best


class Landmarks:
    """(L, N) graph distances from LANDMARKS nodes spread by farthest-point
    sampling in latent space."""

    def __init__(self, nodes, matrix):
        count = min(LANDMARKS, max(8, LANDMARK_BYTES // (12 * len(nodes))), len(nodes))
        # Landmarks among the nodes with edges: a graph the robot's world leaves may
        # hold isolated nodes (inside an object), whose distances bound nothing.
        linked = np.diff(matrix.indptr) > 0
        chosen = [int(np.argmax(linked))]
        gap = np.where(linked, np.inf, -np.inf)
        for _ in range(count - 1):
            gap = np.minimum(gap, np.linalg.norm(nodes - nodes[chosen[-1]], axis=1))
            chosen.append(int(np.argmax(gap)))
        # Where a graph falls apart, a landmark's distance to another component is
        # infinite: a node there gets an infinite bound (it cannot reach the goal),
        # and where both distances are infinite the bound is NaN, which the search
        # skips (no information), so every row is kept.
        self.dist = np.ascontiguousarray(dijkstra(matrix, directed=False,
                                                  indices=np.unique(chosen)))

    def of_end(self, end, attached, n):
        """(c, r, near) per landmark for a query end: a node, or a point joined to
        [(node, weight)]. From the point, d(end, v) = min_a w_a + d(a, v) and
        |d_L(v) - c| + r <= d(end, v) for every node v (the same form as for a
        node, where r = 0); near = min_a d_L(a) + w_a is a path's length."""
        if end < n:
            column = self.dist[:, end]
            return column, np.zeros_like(column), column
        nodes = np.array([a for a, _ in attached])
        w = np.array([w for _, w in attached])[None]
        near = (self.dist[:, nodes] + w).min(1)
        far = (self.dist[:, nodes] - w).max(1)
        with np.errstate(invalid="ignore"):   # inf - inf (another component): NaN, skipped
            return 0.5 * (near + far), 0.5 * (near - far), near

    def active(self, a, b):
        """The landmarks that bound d(a, b) best (a, b: of_end's tuples), best
        first: a max over fewer rows is still a consistent lower bound, and cheaper."""
        with np.errstate(invalid="ignore"):   # inf - inf: no information, last
            gap = np.abs(a[2] - b[2])
        return np.argsort(np.where(np.isnan(gap), -1.0, gap))[::-1]

    def below(self, rows, cols, end):
        """float64 lower bounds of d(v, end) for the nodes cols, from landmarks rows."""
        c, r, _ = end
        with np.errstate(invalid="ignore"):
            bound = np.abs(self.dist[rows[:, None], cols] - c[rows, None]) + r[rows, None]
        return np.maximum(np.nan_to_num(bound, nan=0.0, posinf=np.inf).max(0, initial=0.0),
                          0.0)


class GraphSearch:
    def __init__(self, nodes, matrix, edges, weights, node_x):
        """nodes (N, Nz); matrix: the symmetric CSR of edge weights; edges (E, 2) and
        weights (E,) the same edges listed once; node_x (N, Nx) the nodes' decodings."""
        self.nodes, self.matrix, self.n = nodes, matrix, len(nodes)
        self._landmarks = self._keys = None
        self._open = np.zeros(len(matrix.data), bool)   # `blocked` when nothing is
        self._node_x_np = node_x
        # Python-object views for A*'s hot loop, filled as queries reach nodes.
        self._adjacency = _Lazy(lambda u: list(zip(
            matrix.indices[matrix.indptr[u]:matrix.indptr[u + 1]].tolist(),
            matrix.data[matrix.indptr[u]:matrix.indptr[u + 1]].tolist())))
        self._rows = _Lazy(lambda v: node_x[v].tolist())

    def landmarks(self):
        """The graph's Landmarks, computed on the first served query."""
        if self._landmarks is None:
            self._landmarks = Landmarks(self.nodes, self.matrix)
        return self._landmarks

    def warm(self):
        """Pay at start-up what the first query would: the landmarks, and loading the
        compiled search (numba compiles it once per machine, then reads its cache)."""
        if self.n > 1:
            self.dijkstra(0, 1, [], {})

    def positions(self, pairs):
        """CSR positions of the edges (i, j) and (j, i) for node pairs (K, 2): what
        `blocked` takes. Positions are sorted by (row, column), so one
        searchsorted over row * N + column finds them all."""
        m, n = self.matrix, self.n
        if self._keys is None:
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(m.indptr))
            self._keys = rows * n + m.indices
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        keys = np.r_[pairs[:, 0] * n + pairs[:, 1], pairs[:, 1] * n + pairs[:, 0]]
        found = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        if len(keys) and (self._keys[found] != keys).any():
            raise ValueError("blocked: a node pair is not an edge of the graph; pass rows "
                             "of the graph's edges array")
        return found

    def dijkstra(self, source, target, start_edges, into_goal, blocked=None):
        """A* with landmark bounds (compiled) over the graph plus the query's edges;
        blocked: positions in self.matrix.data (indices or a boolean mask) of edges
        this query must not use. Returns (node path, hop weights, nodes expanded) or
        None. (Named for the method shortest_path() offers: the compiled search.)"""
        n, m = self.n, self.matrix
        if source == target:   # both ends on one node
            return [source], [], 1
        start = [(v, w) for v, w in start_edges if v < n] if source == n else [(source, 0.0)]
        goal = [(target, 0.0)] if target < n else list(into_goal.items())
        direct = min([w for v, w in start_edges if v == target], default=np.inf)
        if not start or not goal:   # every edge of an end left out (e.g. by objects)
            return ([source, target], [float(direct)], 0) if np.isfinite(direct) else None
        marks = self.landmarks()
        start_end = marks.of_end(source, start, n)
        goal_end = marks.of_end(target, goal, n)
        rows = marks.active(start_end, goal_end)[:ACTIVE]
        mask = self._open if blocked is None else _mask(blocked, len(m.data))
        nodes, reach, last_hop, expanded = alt_astar(
            m.indptr, m.indices, m.data, mask,
            np.array([v for v, _ in start], np.int64), np.array([w for _, w in start], float),
            np.array([v for v, _ in goal], np.int64), np.array([w for _, w in goal], float),
            marks.dist, rows, goal_end[0][rows], goal_end[1][rows])
        if not len(nodes) or reach[-1] + last_hop >= direct:
            if np.isfinite(direct):   # no path through the graph is shorter
                return [source, target], [float(direct)], int(expanded)
            return None
        path = ([n] if source == n else []) + nodes.tolist()
        hops = np.diff(reach).tolist()
        if source == n:
            hops = [float(reach[0])] + hops
        if target == n + 1:   # the last hop, into a goal that is not a node
            path, hops = path + [n + 1], hops + [float(last_hop)]
        return path, hops, int(expanded)

    def astar(self, source, target, start_edges, into_goal, x_goal):
        """A* over the graph plus the query's edges; Dijkstra when x_goal is None.

        Dicts instead of arrays of size N, and a heuristic computed only for the
        nodes reached: a query's cost does not grow with the graph. Closed nodes
        are never reopened, so any weights (even corrupt ones) terminate.
        Returns (node path, hop weights, nodes expanded) or None.
        """
        n = self.n
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


def _mask(blocked, size):
    """blocked (a boolean mask over the CSR's data, or positions in it) as the mask."""
    blocked = np.asarray(blocked)
    if blocked.dtype == bool:
        if blocked.shape != (size,):
            raise ValueError("blocked: a boolean mask must have one entry per CSR position "
                             "(%d), not shape %s" % (size, blocked.shape))
        return blocked
    blocked = blocked.astype(np.int64).ravel()
    if len(blocked) and not 0 <= blocked.min() <= blocked.max() < size:
        raise ValueError("blocked: positions must lie in the graph's CSR data (0 to %d); "
                         "GraphSearch.positions turns node pairs into positions" % (size - 1))
    mask = np.zeros(size, bool)
    mask[blocked] = True
    return mask


class _Lazy(dict):
    """A dict that computes a missing key once (then a plain C-level lookup)."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value
