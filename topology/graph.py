"""The inter-datacenter network (SPEC 5): a networkx backbone over the 12 locations and Eq. 2 latencies.

The backbone spans all 12 locations whatever D is (the network exists even where no datacenter is used): each
location is linked to its `cfg.backbone_neighbours` nearest neighbours by great-circle distance, plus the
long-haul routes of real submarine / terrestrial cable systems listed in LONG_HAUL, so that the graph is
connected and continents are joined where cables actually run. A request from origin region o to datacenter d
follows the shortest path by km; LA_net = km x lambda_media + hops x sigma_hop (`physics.network_latency_s`).
"""
from __future__ import annotations

import functools

import networkx as nx
import numpy as np

from simcore import physics
from topology.sites import SITE_ORDER, load_sites

EARTH_RADIUS_KM = 6371.0

# Long-haul links joining regions the nearest-neighbour rule alone would leave apart or route implausibly
# (named after the cable systems that carry them).
LONG_HAUL = (
    ("US-CAL-CISO", "JP-TK"),  # transpacific (e.g. FASTER, JUPITER)
    ("US-CAL-CISO", "AU-NSW"),  # Southern Cross
    ("US-MIDA-PJM", "DE-LU"),  # transatlantic (e.g. MAREA / Dunant + European backhaul)
    ("US-MIDA-PJM", "BR-SP"),  # Americas (e.g. Monet / Seabras-1)
    ("ZA", "DE-LU"),  # West Africa Cable System / Equiano to Europe
    ("ZA", "IN-WE"),  # Indian Ocean (e.g. SEACOM / 2Africa)
    ("SG", "AU-NSW"),  # Indigo
    ("IN-WE", "SG"),  # SEA-ME-WE
    ("IN-WE", "DE-LU"),  # SEA-ME-WE / AAE-1 via Suez
    ("BR-SP", "ZA"),  # SACS / SAIL
)


def great_circle_km(lat1, lon1, lat2, lon2):
    """Haversine distance between points given in degrees, km."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dlmb = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def build_backbone(cfg) -> nx.Graph:
    """The backbone over all 12 locations; edge attribute `km` = great-circle length."""
    return _backbone(cfg.backbone_neighbours)


@functools.lru_cache(maxsize=None)
def _backbone(k: int) -> nx.Graph:
    sites = load_sites(len(SITE_ORDER))
    g = nx.Graph()
    for s in sites:
        g.add_node(s.zone, lat=s.lat, lon=s.lon, city=s.city)
    lat = np.array([s.lat for s in sites])
    lon = np.array([s.lon for s in sites])
    km = great_circle_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    for i, s in enumerate(sites):
        for j in np.argsort(km[i], kind="stable")[1:k + 1]:
            g.add_edge(s.zone, sites[j].zone, km=float(km[i, j]))
    index = {s.zone: i for i, s in enumerate(sites)}
    for a, b in LONG_HAUL:
        g.add_edge(a, b, km=float(km[index[a], index[b]]))
    if not nx.is_connected(g):
        raise RuntimeError("backbone is not connected: extend LONG_HAUL")
    return g


def path_km_hops(cfg) -> tuple[np.ndarray, np.ndarray]:
    """Shortest-path km and hop count between the first D locations ([origin, datacenter]); zero diagonal."""
    km, hops = _paths(cfg.backbone_neighbours)
    return km[:cfg.dcs, :cfg.dcs].copy(), hops[:cfg.dcs, :cfg.dcs].copy()


@functools.lru_cache(maxsize=None)
def _paths(k: int) -> tuple[np.ndarray, np.ndarray]:
    g = _backbone(k)
    n = len(SITE_ORDER)
    km, hops = np.zeros((n, n)), np.zeros((n, n), dtype=int)
    for i, a in enumerate(SITE_ORDER):
        lengths, paths = nx.single_source_dijkstra(g, a, weight="km")
        for j, b in enumerate(SITE_ORDER):
            km[i, j] = lengths[b]
            hops[i, j] = len(paths[b]) - 1
    return km, hops


def latency_matrix_s(cfg) -> np.ndarray:
    """Eq. 2 one-way latency from each origin region to each datacenter, seconds, [D, D]."""
    km, hops = path_km_hops(cfg)
    return physics.network_latency_s(km, hops, cfg.lambda_media_ms_per_km, cfg.sigma_hop_ms)
