"""The inter-datacenter network (SPEC 5): a networkx backbone over the 12 locations and Eq. 2 latencies.

The backbone spans all 12 locations whatever D is (the network exists even where no datacenter is used): each
location is linked to its `cfg.backbone_neighbours` nearest neighbours by great-circle distance, plus the
long-haul routes of real submarine / terrestrial cable systems listed in LONG_HAUL, so that the graph is
connected and continents are joined where cables actually run. A request from origin region o to datacenter d
follows the shortest path by km; LA_net = km x lambda_media + hops x sigma_hop (`physics.network_latency_s`).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import networkx as nx
import numpy as np

from simcore import physics
from simcore.errors import ConfigError
from topology.sites import SITE_ORDER, load_sites

EARTH_RADIUS_KM = 6371.0  # mean Earth radius (IUGG), the usual sphere for great-circle distances


class LongHaulLink(NamedTuple):
    """A backbone edge that exists because a real cable system carries it, not because it is short."""

    a: str
    b: str
    route: str


# Long-haul links joining regions the nearest-neighbour rule alone would leave apart or route implausibly
# (e.g. with k = 3 San Jose's neighbours are all North American, so nothing crosses the Pacific). The route
# names are examples of the cable systems on that corridor; the edge length is still the great-circle km.
LONG_HAUL = (
    LongHaulLink("US-CAL-CISO", "JP-TK", "transpacific (e.g. JUPITER, FASTER)"),
    LongHaulLink("US-CAL-CISO", "AU-NSW", "Southern Cross (California - Sydney via Hawaii)"),
    LongHaulLink("US-MIDA-PJM", "DE-LU", "transatlantic (e.g. MAREA, Dunant) + European backhaul"),
    LongHaulLink("US-MIDA-PJM", "BR-SP", "US east coast - Brazil (e.g. Monet, Seabras-1)"),
    LongHaulLink("ZA", "DE-LU", "Africa west coast - Europe (e.g. WACS, Equiano)"),
    LongHaulLink("ZA", "IN-WE", "Indian Ocean (e.g. SEACOM, 2Africa)"),
    LongHaulLink("SG", "AU-NSW", "Indigo (Singapore - Sydney via Perth)"),
    LongHaulLink("IN-WE", "SG", "SEA-ME-WE 4 / 5"),
    LongHaulLink("IN-WE", "DE-LU", "Europe - India via Suez (e.g. SEA-ME-WE 4, IMEWE)"),
    LongHaulLink("BR-SP", "ZA", "South Atlantic (WACS to Angola, then SACS to Brazil)"),
)


def great_circle_km(lat1, lon1, lat2, lon2):
    """Haversine distance between points given in degrees, km."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dlmb = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def build_backbone(cfg) -> nx.Graph:
    """The backbone over all 12 locations (a fresh copy: callers may change it).

    Nodes: zone ids with `lat`, `lon`, `city`. Edges: `km` = great-circle length; `kind` = "nearest" (one end
    is among the other's cfg.backbone_neighbours nearest locations) or "long-haul" (in LONG_HAUL, whose
    `route` names the cable corridor). Great-circle km understate real fibre routes, which bend around land.
    """
    return _backbone(_neighbours(cfg)).copy()


def _neighbours(cfg) -> int:
    k = cfg.backbone_neighbours
    if not (1 <= k < len(SITE_ORDER)):
        raise ConfigError(f"backbone_neighbours {k}: must be between 1 and {len(SITE_ORDER) - 1}")
    return k


@functools.cache
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
            # "Nearest" is not symmetric; an edge exists when either end picks the other.
            g.add_edge(s.zone, sites[j].zone, km=float(km[i, j]), kind="nearest")
    index = {s.zone: i for i, s in enumerate(sites)}
    for link in LONG_HAUL:
        g.add_edge(link.a, link.b, km=float(km[index[link.a], index[link.b]]), kind="long-haul", route=link.route)
    if not nx.is_connected(g):
        raise RuntimeError("backbone is not connected: extend LONG_HAUL")
    return g


def path_km_hops(cfg) -> tuple[np.ndarray, np.ndarray]:
    """Shortest-path km and hop count between the first D locations ([origin, datacenter]); zero diagonal."""
    km, hops = _paths(_neighbours(cfg))
    return km[:cfg.dcs, :cfg.dcs].copy(), hops[:cfg.dcs, :cfg.dcs].copy()


@functools.cache
def _paths(k: int) -> tuple[np.ndarray, np.ndarray]:
    g = _backbone(k)
    n = len(SITE_ORDER)
    km, hops = np.zeros((n, n)), np.zeros((n, n), dtype=int)
    for i, a in enumerate(SITE_ORDER):
        # Dijkstra by km; hops are the edges of that path (not the fewest-hop path).
        lengths, paths = nx.single_source_dijkstra(g, a, weight="km")
        for j, b in enumerate(SITE_ORDER):
            km[i, j] = lengths[b]
            hops[i, j] = len(paths[b]) - 1
    km.setflags(write=False)
    hops.setflags(write=False)
    return km, hops


def latency_matrix_s(cfg) -> np.ndarray:
    """Eq. 2 one-way latency from each origin region to each datacenter, seconds, [D, D]."""
    km, hops = path_km_hops(cfg)
    return physics.network_latency_s(km, hops, cfg.lambda_media_ms_per_km, cfg.sigma_hop_ms)
