"""Energy flow polynomials (EFPs) of degree d <= 4 in torch, vectorised over jets.

The set is the one jetnet uses for FPD, KPD and W1EFP: ``energyflow.EFPSet(("d<=", 4),
measure="hadr", beta=1, normed=None, coords="ptyphim")`` on jets given as (pt, eta, phi), i.e. the
energies are the unnormalised pt_rel (``normed=None`` is falsy: ``z_i = pt_i``), the angles
``theta_ij = sqrt(deta^2 + dphi^2)`` with dphi wrapped to [0, pi]. An EFP of a multigraph with
vertices ``a, b, ...`` and edges ``(u, v)`` is ``sum_{a,b,...} z_a z_b ... prod_edges theta_uv``.

The 36 columns are in energyflow's order: the 21 connected graphs (``CONNECTED_GRAPHS``, the empty
one-vertex graph first) and then 15 disconnected ones (``DISCONNECTED_PRODUCTS``), each the product of
connected ones. Each connected graph is contracted by eliminating one vertex at a time (the one with
fewest neighbours), so trees cost O(N^2) and the triangle and square O(N^3) per jet, as batched
matrix products. Padded particles get ``z = 0`` and so never contribute; float64 throughout.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

Graph = tuple[int, tuple[tuple[int, int], ...]]
"""``(number of vertices, edges)``; a repeated edge is a higher power of the angle."""

CONNECTED_GRAPHS: tuple[Graph, ...] = (
    (1, ()),
    (2, ((0, 1),)),
    (2, ((0, 1), (0, 1))),
    (2, ((0, 1), (0, 1), (0, 1))),
    (2, ((0, 1), (0, 1), (0, 1), (0, 1))),
    (3, ((0, 1), (0, 2))),
    (3, ((0, 1), (0, 2), (0, 2))),
    (3, ((0, 1), (0, 2), (0, 2), (0, 2))),
    (3, ((0, 1), (0, 1), (0, 2), (0, 2))),
    (3, ((0, 1), (0, 2), (1, 2))),
    (3, ((0, 1), (0, 2), (0, 2), (1, 2))),
    (4, ((0, 1), (0, 2), (0, 3))),
    (4, ((0, 1), (0, 2), (0, 2), (0, 3))),
    (4, ((0, 1), (0, 2), (1, 3))),
    (4, ((0, 1), (0, 2), (0, 2), (1, 3))),
    (4, ((0, 1), (0, 1), (0, 2), (1, 3))),
    (4, ((0, 1), (0, 2), (1, 2), (0, 3))),
    (4, ((0, 1), (0, 2), (1, 3), (2, 3))),
    (5, ((0, 1), (0, 2), (0, 3), (0, 4))),
    (5, ((0, 1), (0, 2), (0, 3), (1, 4))),
    (5, ((0, 1), (0, 2), (1, 3), (2, 4))),
)
"""The connected multigraphs with at most 4 edges, in energyflow's order (``EFPSet.graphs()``)."""

DISCONNECTED_PRODUCTS: tuple[tuple[int, ...], ...] = (
    (1, 1), (1, 2), (1, 3), (2, 2), (1, 5), (2, 5), (1, 6), (1, 9),
    (1, 1, 1), (1, 11), (1, 13), (5, 5), (1, 1, 2), (1, 1, 5), (1, 1, 1, 1),
)  # fmt: skip
"""Disconnected EFPs with d <= 4: the product of these connected columns, in energyflow's order."""

NUM_EFPS = len(CONNECTED_GRAPHS) + len(DISCONNECTED_PRODUCTS)
"""36 EFPs with d <= 4."""
W1EFP_COLUMNS = (12, 14, 15, 16, 17)
"""Columns of the five prime n = 4, d = 4 EFPs that W1EFP compares (jetnet's default W1EFP set)."""


CPU_CHUNK = 256
"""Jets per chunk on the CPU (small tensors stay in cache); on a GPU ``GPU_CHUNK``."""
GPU_CHUNK = 8192


@contextlib.contextmanager
def cpu_threads(num: int = 1) -> Iterator[None]:
    """Within the block torch uses ``num`` CPU threads (restored after).

    The metrics run single-threaded on the CPU: their many small tensor operations are up to ten
    times slower with a thread pool on a CPU shared with other work (e.g. a training).
    """
    saved = torch.get_num_threads()
    torch.set_num_threads(num)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def angles(eta: Tensor, phi: Tensor) -> Tensor:
    """Pairwise ``theta_ij = sqrt(deta^2 + dphi^2)``, ``(B, N, N)``, with dphi wrapped to [0, pi]."""
    deta = eta[:, :, None] - eta[:, None, :]
    dphi = math.pi - torch.abs(torch.abs(phi[:, :, None] - phi[:, None, :]) - math.pi)
    return torch.sqrt(deta**2 + dphi**2)


def _contract(graph: Graph, z: Tensor, powers: Sequence[Tensor], memo: dict[tuple, Tensor]) -> Tensor:
    """The EFP of one connected ``graph`` for each jet: ``(B,)`` from energies ``z`` ``(B, N)`` and
    ``powers[w - 1] = theta**w`` ``(B, N, N)``.

    ``memo`` holds intermediate results shared by graphs of one batch: the leaf messages
    ``theta**w @ z`` and the products ``theta**w diag(z) theta**v``, which only involve the
    symmetric angle powers and the energies (named by a symbol, unlike derived factors).
    """
    num_vertices, edges = graph
    # Factors: a vector per vertex (its energy), a matrix per distinct edge, each with a symbol
    # ("z" or the power w) while it is an original factor, None once derived.
    vectors: dict[int, tuple[Tensor, object]] = {v: (z, "z") for v in range(num_vertices)}
    matrices: dict[tuple[int, int], tuple[Tensor, object]] = {}
    for edge in sorted(set(edges)):
        power = edges.count(edge)
        matrices[edge] = (powers[power - 1], power)
    alive = set(range(num_vertices))
    while len(alive) > 1:
        neighbours = {v: {u for e in matrices for u in e if v in e and u != v} for v in alive}
        v = min(alive, key=lambda k: (len(neighbours[k]), k))
        weighted, weighted_symbol = vectors.pop(v)
        around = sorted(neighbours[v])
        links = [matrices.pop(_edge(v, u)) for u in around]
        if len(around) == 1:  # a leaf: sum_v M[u, v] z_v -> a vector on u
            u = around[0]
            (link, link_symbol), key = links[0], ("leaf", links[0][1], weighted_symbol)

            def leaf(link: Tensor = link, weighted: Tensor = weighted, u: int = u, v: int = v) -> Tensor:
                return torch.bmm(_oriented(link, u, v), weighted[:, :, None])[..., 0]

            message = _memoised(memo, key, leaf, link_symbol, weighted_symbol)
            vector, _ = vectors[u]
            vectors[u] = (vector * message, None)
        elif len(around) == 2:  # sum_v M[u, v] z_v M[v, x] -> a matrix on (u, x)
            u, x = around  # u < x: the product is indexed [u, x], as the edge (u, x) is stored
            (first, first_symbol), (second, second_symbol) = links
            key = ("pair", first_symbol, second_symbol, weighted_symbol)  # ordered: T1 D T2 is not T2 D T1

            def pair(first: Tensor = first, second: Tensor = second, weighted: Tensor = weighted, u: int = u, v: int = v,
                     x: int = x) -> Tensor:
                return torch.bmm(_oriented(first, u, v) * weighted[:, None, :], _oriented(second, v, x))

            product = _memoised(memo, key, pair, first_symbol, second_symbol, weighted_symbol)
            edge = (u, x)
            matrices[edge] = (matrices[edge][0] * product, None) if edge in matrices else (product, None)
        else:  # pragma: no cover - no d <= 4 graph needs it with min-degree elimination
            raise NotImplementedError(f"vertex of degree {len(around)} in {graph}")
        alive.remove(v)
    (last,) = alive
    return vectors[last][0].sum(dim=1)


def _memoised(memo: dict[tuple, Tensor], key: tuple, compute: Callable[[], Tensor], *symbols: object) -> Tensor:
    """``compute()``, remembered under ``key`` when every factor is an original one (has a symbol)."""
    if any(s is None for s in symbols):
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _edge(u: int, v: int) -> tuple[int, int]:
    return (u, v) if u < v else (v, u)


def _oriented(matrix: Tensor, row: int, col: int) -> Tensor:
    """The matrix of the edge between ``row`` and ``col`` indexed ``[row, col]`` (stored for ``row < col``)."""
    return matrix if row < col else matrix.transpose(1, 2)


def _batch_efps(points: Tensor, mask: Tensor) -> Tensor:
    """The 36 EFPs of one batch of jets: ``points (B, N, 3)`` as (eta, phi, pt), ``mask (B, N)``."""
    z = torch.where(mask, points[..., 2].clamp(min=0), torch.zeros((), dtype=points.dtype, device=points.device))
    theta = angles(points[..., 0], points[..., 1])
    square = theta * theta
    powers = [theta, square, square * theta, square * square]
    memo: dict[tuple, Tensor] = {}
    connected = [_contract(g, z, powers, memo) for g in CONNECTED_GRAPHS]
    disconnected = [math.prod((connected[i] for i in factors), start=torch.ones_like(z[:, 0]))
                    for factors in DISCONNECTED_PRODUCTS]
    return torch.stack(connected + disconnected, dim=1)


def efps(
    points: Tensor | np.ndarray,
    mask: Tensor | np.ndarray,
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """The 36 d <= 4 EFPs of jets, ``(B, 36)`` float64 on the CPU, equal to jetnet's
    ``utils.efps(jets, efpset_args=[("d<=", 4)])`` on the zero-padded jets.

    ``points (B, N, >=3)`` are (eta_rel, phi_rel, pt_rel) in physical units; ``mask (B, N)`` marks
    real particles (padded ones never matter; negative pt_rel is clipped to zero, as jetnet's
    ``gen_jet_corrections`` does). ``device`` (default: that of ``points``) computes ``chunk_size``
    jets at a time (default :data:`CPU_CHUNK` or :data:`GPU_CHUNK`), single-threaded on the CPU;
    ``progress(k)`` is called after each chunk of ``k`` jets.
    """
    points = torch.as_tensor(points)[..., :3]
    mask = torch.as_tensor(mask).bool()
    if points.ndim != 3 or mask.shape != points.shape[:2]:
        raise ValueError(f"expected points (B, N, 3) and mask (B, N), got {tuple(points.shape)} and {tuple(mask.shape)}")
    target = torch.device(device) if device is not None else points.device
    chunk_size = chunk_size or (CPU_CHUNK if target.type == "cpu" else GPU_CHUNK)
    out = torch.empty((len(points), NUM_EFPS), dtype=torch.float64)
    with cpu_threads(1):
        for start in range(0, len(points), chunk_size):
            stop = min(start + chunk_size, len(points))
            chunk = points[start:stop].to(target, torch.float64)
            out[start:stop] = _batch_efps(chunk, mask[start:stop].to(target)).cpu()
            if progress is not None:
                progress(stop - start)
    return out
