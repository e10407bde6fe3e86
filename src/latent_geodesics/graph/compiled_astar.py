"""A* with landmark (ALT) lower bounds over a CSR graph, compiled by numba.

Why a kernel of our own: scipy's csgraph has Dijkstra but no A* and no stop at a
goal, so it settles every node nearer than the goal (several times A*'s count, and
a subgraph rebuilt per query to run it on reduced costs); the graph libraries that
have A* (networkx, rustworkx, igraph) call a Python heuristic per node. Here the
heuristic is the landmark bound itself, read from arrays inside the loop, and the
graph is the CSR the rest of the package already holds.
"""
import heapq

import numpy as np
from numba import njit

START = -2   # parent of a node reached by one of the query's start edges


@njit(cache=True, nogil=True)
def _bound(marks, rows, c, r, v):
    """max over the active landmarks of |d_L(v) - c_L| + r_L: a lower bound of v's
    graph distance to the goal (Landmarks.of_end); a NaN term (both distances
    infinite: another component) is skipped by the comparison."""
    best = 0.0
    for a in range(len(rows)):
        value = abs(marks[rows[a], v] - c[a]) + r[a]
        if value > best:
            best = value
    return best


@njit(cache=True, nogil=True)
def alt_astar(indptr, indices, weights, blocked, start_nodes, start_weights,
              goal_nodes, goal_weights, marks, rows, c, r):
    """Shortest path from a query start (joined to start_nodes by start_weights) to a
    query goal (joined from goal_nodes by goal_weights); an edge whose CSR position
    is True in blocked is not used. The bound is consistent, so a node is expanded
    once unless a shorter way to it turns up (then it is reopened) and the search
    stops when no open node can improve on the best way into the goal.
    Returns (nodes from the first after the start to the last before the goal, the
    distance along them to each, the goal edge's weight, nodes expanded); no path:
    an empty node array."""
    n = len(indptr) - 1
    g = np.full(n, np.inf)
    h = np.full(n, -1.0)
    parent = np.full(n, -1, np.int64)
    closed = np.zeros(n, np.bool_)
    into_goal = np.full(n, np.inf)
    for i in range(len(goal_nodes)):
        into_goal[goal_nodes[i]] = min(into_goal[goal_nodes[i]], goal_weights[i])
    heap = [(0.0, np.int64(0))]
    heap.pop()
    for i in range(len(start_nodes)):
        v = np.int64(start_nodes[i])
        if start_weights[i] < g[v]:
            g[v], parent[v] = start_weights[i], START
            if h[v] < 0:
                h[v] = _bound(marks, rows, c, r, v)
            heapq.heappush(heap, (g[v] + h[v], v))
    best, last, expanded = np.inf, -1, 0
    while len(heap):
        f, u = heapq.heappop(heap)
        if f >= best:
            break
        if closed[u] or f > g[u] + h[u]:   # a stale entry: u was reached shorter since
            continue
        closed[u] = True
        expanded += 1
        if g[u] + into_goal[u] < best:
            best, last = g[u] + into_goal[u], u
        for k in range(indptr[u], indptr[u + 1]):
            if blocked[k]:
                continue
            v = np.int64(indices[k])
            cost = g[u] + weights[k]
            if cost < g[v]:
                g[v], parent[v], closed[v] = cost, u, False
                if h[v] < 0:
                    h[v] = _bound(marks, rows, c, r, v)
                heapq.heappush(heap, (cost + h[v], v))
    if last < 0:
        return np.empty(0, np.int64), np.empty(0), np.inf, expanded
    count, v = 1, last
    while parent[v] != START:
        v = parent[v]
        count += 1
    path = np.empty(count, np.int64)
    v = last
    for i in range(count - 1, -1, -1):
        path[i] = v
        v = parent[v]
    return path, g[path], into_goal[last], expanded
