"""Shortest node paths over a latent graph plus a query's own edges.

The served search is a bidirectional Dijkstra in scipy's compiled code: a query
start becomes one extra CSR row (its out-edges to the nodes it attaches to), a
query goal another, and both searches stop at half an upper bound read off
landmark distances. `astar` is the Python reference it replaced (the heuristic
||f(z_v) - f(z_goal)|| never overestimates a decoded length, so both return the
same length): under the data-aware metric that bound is loose and A* settles most
of the graph.
"""
import heapq
from math import dist

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

LANDMARKS = 8   # nodes whose distances to all others bound a query's distance from above


class GraphSearch:
    def __init__(self, nodes, matrix, edges, weights, node_x):
        """nodes (N, Nz); matrix: the symmetric CSR of edge weights; edges (E, 2) and
        weights (E,) the same edges listed once; node_x (N, Nx) the nodes' decodings."""
        self.nodes, self.matrix, self.n = nodes, matrix, len(nodes)
        i, j = edges[:, 0], edges[:, 1]
        self._both_ways = (np.r_[i, j], np.r_[j, i], np.r_[weights, weights])
        self._landmark_dist = None
        self._borrowed = False   # landmark distances of another edge set (reuse_landmarks)
        self._node_x_np = node_x
        # Python-object views for A*'s hot loop, filled as queries reach nodes.
        self._adjacency = _Lazy(lambda u: list(zip(
            matrix.indices[matrix.indptr[u]:matrix.indptr[u + 1]].tolist(),
            matrix.data[matrix.indptr[u]:matrix.indptr[u + 1]].tolist())))
        self._rows = _Lazy(lambda v: node_x[v].tolist())

    def dijkstra(self, source, target, start_edges, into_goal):
        """Bidirectional Dijkstra (scipy's, compiled) over the graph plus the query's
        edges. Returns (node path, hop weights, nodes settled) or None.

        Both searches stop at half an upper bound U of the distance D, read off
        landmark distances; a shortest path's middle edge (u, v) then has both
        ends settled, so D = min over edges of d_s(u) + w + d_g(v). Two balls of
        radius U/2 hold a fraction of the nodes one search to the goal settles.
        """
        n = self.n
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
        if self._borrowed and np.isfinite(limit) and not cost <= 2 * limit:
            # borrowed landmarks may bound short: the two balls met nowhere; widen
            dist_to, parent = dijkstra(matrix, directed=True, indices=ends,
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

    def reuse_landmarks(self, other):
        """Take another search's landmark distances (a superset of these edges: with
        edges removed, its bounds may be short, and dijkstra then widens)."""
        self._landmark_dist, self._borrowed = other._landmarks(), True

    def _with_rows(self, start_nodes, goal_nodes):
        """The graph's CSR with rows n (the start's out-edges) and n + 1 (the goal's)."""
        n, m = self.n, self.matrix
        cols = [v for v, _ in start_nodes] + [v for v, _ in goal_nodes]
        weights = [w for _, w in start_nodes] + [w for _, w in goal_nodes]
        indptr = np.r_[m.indptr, m.indptr[-1] + len(start_nodes), m.indptr[-1] + len(cols)]
        return csr_matrix((np.r_[m.data, weights], np.r_[m.indices, np.array(cols, dtype=int)]
                           .astype(m.indices.dtype), indptr), shape=(n + 2, n + 2))

    def _upper_bound(self, source, target, start_nodes, goal_nodes):
        """The shortest of the paths through one landmark: an upper bound of D."""
        landmarks = self._landmarks()
        n = self.n

        def to_landmarks(end, attached):
            if end < n:
                return landmarks[:, end]
            return np.min([w + landmarks[:, a] for a, w in attached], axis=0)
        return float(np.min(to_landmarks(source, start_nodes) + to_landmarks(target, goal_nodes)))

    def _landmarks(self):
        """(L, N) graph distances from LANDMARKS nodes spread by farthest-point sampling."""
        if self._landmark_dist is None:
            chosen, gap = [0], np.full(self.n, np.inf)
            for _ in range(min(LANDMARKS, self.n) - 1):
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


def _walk(parent, node, root):
    """Nodes from `node` back to `root` along a predecessor row."""
    path = [int(node)]
    while path[-1] != root:
        path.append(int(parent[path[-1]]))
    return path


class _Lazy(dict):
    """A dict that computes a missing key once (then a plain C-level lookup)."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value
