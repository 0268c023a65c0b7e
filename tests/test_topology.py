"""topology: sites, signals and the backbone, checked against hand computations and the bundled files.

The tests read only `topology/data/` (never /work/shared), so they run from a plain checkout.
"""
import dataclasses
import gzip
import itertools
import math
import time

import networkx as nx
import numpy as np
import pytest

from simcore.config import Config
from simcore.errors import ConfigError
from topology import sites as sites_mod
from topology.graph import (
    LONG_HAUL,
    build_backbone,
    great_circle_km,
    latency_matrix_s,
    path_km_hops,
)
from topology.sites import (
    DATA_DIR,
    SITE_ORDER,
    cooling_cop,
    grid_water_intensity_l_per_kwh,
    load_sites,
    site_signals,
    wet_bulb_c,
)

CFG = Config(dcs=12, hours=24)


def read_bundled(name):
    """A bundled hourly file: (utc_hour strings, {zone: float array})."""
    with gzip.open(DATA_DIR / name, "rt") as f:
        header = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f]
    cols = {z: np.array([float(r[i]) for r in rows]) for i, z in enumerate(header) if i}
    return [r[0] for r in rows], cols


def law_of_cosines_km(lat1, lon1, lat2, lon2):
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    return 6371.0 * math.acos(math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl))


# --- sites -------------------------------------------------------------------------------------------------
def test_site_order_and_metadata():
    assert SITE_ORDER == ("US-CAL-CISO", "DE-LU", "SG", "US-MIDA-PJM", "JP-TK", "CA-ON", "IN-WE", "BR-SP",
                          "AU-NSW", "US-TEX-ERCO", "ZA", "KR")
    four = load_sites(4)
    assert [s.zone for s in four] == list(SITE_ORDER[:4])
    sj = four[0]
    assert sj.city == "San Jose" and sj.timezone == "America/Los_Angeles"
    assert sj.lat == pytest.approx(37.43, abs=0.05) and sj.lon == pytest.approx(-121.95, abs=0.05)
    assert load_sites(12)[10].city == "Johannesburg" and load_sites(12)[10].lat < -26
    with pytest.raises(dataclasses.FrozenInstanceError):
        sj.lat = 0.0


def test_stull_wet_bulb():
    assert wet_bulb_c(20.0, 50.0) == pytest.approx(13.7, abs=0.05)  # Stull (2011) worked example
    # saturated air: the wet bulb is (close to) the air temperature; elementwise on arrays
    out = wet_bulb_c(np.array([10.0, 30.0]), np.array([99.0, 99.0]))
    assert out.shape == (2,) and np.allclose(out, [10.0, 30.0], atol=0.3)


def test_cop_reference_and_clamps():
    c = Config()
    assert cooling_cop(15.0, c) == pytest.approx(4.78)  # T_wb at the reference -> cop_ref
    assert cooling_cop(25.0, c) == pytest.approx(4.78 * (1 - 0.02 * 10))
    assert cooling_cop(200.0, c) == 2.0 and cooling_cop(-200.0, c) == 8.0
    assert cooling_cop(np.array([15.0, 200.0]), c.replace(cop_min=1.0)).tolist() == pytest.approx([4.78, 1.0])


def test_grid_water_intensity_by_hand():
    rows = (DATA_DIR / "fuel_mix_2023_twh.csv").read_text().splitlines()
    header = rows[0].split(",")
    can = dict(zip(header, next(r for r in rows if r.startswith("CAN")).split(",")))
    factors = dict(line.split(",") for line in (DATA_DIR / "water_factors_gal_per_mwh.csv").read_text().splitlines()[1:])
    fuels = {"coal": "coal-default", "gas": "gas-default", "oil": "gas-default", "nuclear": "nuclear-default",
             "hydroelectricity": "hydro-default", "solar": "solar-pv-default", "wind": "wind-default",
             "biofuel": "biopower-default", "other_renewable_exc_biofuel": "geothermal-default"}
    total = sum(float(can[f]) for f in fuels)
    assert total == pytest.approx(float(can["total"]), rel=1e-3)
    gi = sum(float(can[f]) / total * float(factors[t]) for f, t in fuels.items()) * 0.003785
    assert grid_water_intensity_l_per_kwh("CA-ON") == pytest.approx(gi, rel=1e-3)
    assert 5 < gi < 15  # hydro-heavy Canada (hydro 4491 gal/MWh = 17 L/kWh)
    # the three US zones share the US mix; every site lies between wind (0) and hydro (17 L/kWh)
    us = {grid_water_intensity_l_per_kwh(z) for z in ("US-CAL-CISO", "US-MIDA-PJM", "US-TEX-ERCO")}
    assert len(us) == 1
    assert all(0.5 < s.gi_l_per_kwh < 17 for s in load_sites(12))
    with pytest.raises(ValueError):
        grid_water_intensity_l_per_kwh("XX")


# --- signals -----------------------------------------------------------------------------------------------
def test_signals_shapes_and_ranges():
    s = site_signals(CFG)
    e, d = CFG.epochs, CFG.dcs
    assert (e, d) == (96, 12)
    for a in (s.ci_kg_per_kwh, s.tou_usd_per_kwh, s.cop, s.wet_bulb_c):
        assert a.shape == (e, d) and np.isfinite(a).all()
    assert s.gi_l_per_kwh.shape == (d,) and [x.zone for x in s.sites] == list(SITE_ORDER)
    assert np.all((s.ci_kg_per_kwh >= 0.0) & (s.ci_kg_per_kwh < 1.2))
    assert np.all((s.tou_usd_per_kwh > -1.0) & (s.tou_usd_per_kwh < 5.0))
    assert np.all((s.wet_bulb_c > -30) & (s.wet_bulb_c < 35))
    assert np.all((s.cop >= 2) & (s.cop <= 8))
    # hourly values are held within the hour: the four 15-min epochs of an hour agree
    ci = s.ci_kg_per_kwh.reshape(24, 4, d)
    assert np.all(ci == ci[:, :1, :])
    assert site_signals(Config(dcs=4, hours=2)).ci_kg_per_kwh.shape == (8, 4)


def test_known_hours_equal_the_bundled_values():
    cfg = CFG  # start 2023-07-03
    s = site_signals(cfg)
    hours, price = read_bundled("price_usd_per_mwh.csv.gz")
    _, ci = read_bundled("carbon_direct_g_per_kwh.csv.gz")
    h = hours.index("2023-07-03T13:00Z")
    e = 13 * 4 + 2  # epoch starting 13:30 UTC falls in hour 13
    assert s.tou_usd_per_kwh[e, 1] == pytest.approx(price["DE-LU"][h] / 1000)
    assert s.ci_kg_per_kwh[e, 0] == pytest.approx(ci["US-CAL-CISO"][h] / 1000)
    # a negative wholesale hour is kept (it is real)
    neg = int(np.argmin(price["DE-LU"]))
    assert price["DE-LU"][neg] < 0
    day = hours[neg][:10]
    s2 = site_signals(cfg.replace(start=day))
    e2 = (neg - hours.index(f"{day}T00:00Z")) * 4
    assert s2.tou_usd_per_kwh[e2, 1] == pytest.approx(price["DE-LU"][neg] / 1000) and s2.tou_usd_per_kwh[e2, 1] < 0


def test_cop_modes():
    annual = site_signals(CFG)
    hourly = site_signals(CFG.replace(cop_mode="hourly"))
    assert np.all(annual.cop == annual.cop[0])  # one COP per site all day
    assert np.ptp(hourly.cop[:, 0]) > 0 and not np.allclose(annual.cop, hourly.cop)
    for s in (annual, hourly):
        np.testing.assert_allclose(s.cop, cooling_cop(s.wet_bulb_c, CFG))
    # the annual wet bulb is the 2023 mean of the Stull wet bulb of the bundled weather
    _, temp = read_bundled("temperature_c.csv.gz")
    _, rh = read_bundled("rel_humidity_pct.csv.gz")
    assert annual.wet_bulb_c[0, 2] == pytest.approx(wet_bulb_c(temp["SG"], rh["SG"]).mean())
    assert annual.cop[0, 2] < annual.cop[0, 1]  # humid Singapore cools worse than Frankfurt


@pytest.mark.parametrize("start,hours", [("2024-01-05", 24), ("2022-12-31", 24), ("2023-12-31", 48)])
def test_start_outside_the_data_is_refused(start, hours):
    with pytest.raises(ConfigError, match="2023-01-01..2023-12-31"):
        site_signals(CFG.replace(start=start, hours=hours))


def test_bad_start_and_year_edges():
    with pytest.raises(ConfigError, match="not a date"):
        site_signals(CFG.replace(start="July 3rd"))
    assert site_signals(CFG.replace(start="2023-12-31")).ci_kg_per_kwh.shape == (96, 12)  # last day fits
    assert site_signals(CFG.replace(start="2023-01-01")).ci_kg_per_kwh.shape == (96, 12)


def test_signals_are_fast_and_independent():
    t = time.perf_counter()
    for _ in range(10):
        s = site_signals(CFG.replace(hours=168))
    assert (time.perf_counter() - t) / 10 < 0.3
    s.ci_kg_per_kwh[:] = -1.0  # a caller's array is its own
    assert site_signals(CFG.replace(hours=168)).ci_kg_per_kwh.min() >= 0


def test_bundle_is_compact_and_licensed():
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir() if p.is_file())
    assert total < 1.5e6
    text = (DATA_DIR / "SOURCES.md").read_text()
    for needle in ("green-dcc", "Electricity Maps", "Open-Meteo", "CC-BY 4.0", "codecarbon", "Macknick"):
        assert needle in text
    assert (DATA_DIR / "LICENSE_green-dcc_MIT.txt").exists() and (DATA_DIR / "LICENSE_codecarbon_MIT.txt").exists()
    assert sites_mod.HOURS_IN_DATA == len(read_bundled("rel_humidity_pct.csv.gz")[0]) == 8760


# --- backbone and latency ----------------------------------------------------------------------------------
def test_great_circle_matches_law_of_cosines():
    sj, fr = load_sites(2)
    expected = law_of_cosines_km(sj.lat, sj.lon, fr.lat, fr.lon)
    assert great_circle_km(sj.lat, sj.lon, fr.lat, fr.lon) == pytest.approx(expected, rel=1e-9)
    assert 9000 < expected < 9300  # San Jose - Frankfurt, about 9,150 km


def test_backbone_structure():
    g = build_backbone(CFG)
    assert set(g.nodes) == set(SITE_ORDER) and nx.is_connected(g)
    for link in LONG_HAUL:
        assert g.has_edge(link.a, link.b) and g.edges[link.a, link.b]["kind"] == "long-haul"
    assert g.has_edge("US-CAL-CISO", "JP-TK") and g.has_edge("US-MIDA-PJM", "DE-LU")
    for a, b, km in g.edges(data="km"):
        na, nb = g.nodes[a], g.nodes[b]
        assert km == pytest.approx(law_of_cosines_km(na["lat"], na["lon"], nb["lat"], nb["lon"]), rel=1e-9)
    # every location is linked to its 3 nearest
    assert g.has_edge("US-MIDA-PJM", "CA-ON") and g.has_edge("JP-TK", "KR")
    assert all(g.degree[z] >= CFG.backbone_neighbours for z in SITE_ORDER)
    g.remove_node("SG")  # a copy: the cached backbone is untouched
    assert "SG" in build_backbone(CFG)
    with pytest.raises(ConfigError):
        build_backbone(CFG.replace(backbone_neighbours=0))


def test_latency_matrix_properties_and_entries_by_hand():
    lat = latency_matrix_s(CFG)
    km, hops = path_km_hops(CFG)
    g = build_backbone(CFG)
    assert lat.shape == (12, 12)
    np.testing.assert_allclose(lat, lat.T)
    np.testing.assert_allclose(km, km.T)
    assert np.all(np.diag(lat) == 0) and np.all(np.diag(hops) == 0)
    assert np.all(hops[~np.eye(12, dtype=bool)] >= 1)
    for i, a in enumerate(SITE_ORDER):
        for j, b in enumerate(SITE_ORDER):
            # shortest paths: no detour through a third location is shorter, in km or in latency
            assert km[i, j] <= (km[i, :] + km[:, j]).min() + 1e-6
            assert lat[i, j] <= (lat[i, :] + lat[:, j]).min() + 1e-12
            # never shorter than the great circle, never longer than a direct backbone edge
            assert km[i, j] >= great_circle_km(g.nodes[a]["lat"], g.nodes[a]["lon"],
                                               g.nodes[b]["lat"], g.nodes[b]["lon"]) - 1e-6
            if g.has_edge(a, b):
                assert km[i, j] <= g.edges[a, b]["km"] + 1e-6
    # one direct edge by hand: San Jose - Tokyo, transpacific, 1 hop
    i, j = SITE_ORDER.index("US-CAL-CISO"), SITE_ORDER.index("JP-TK")
    sj_jp = g.edges["US-CAL-CISO", "JP-TK"]["km"]
    assert hops[i, j] == 1 and km[i, j] == pytest.approx(sj_jp)
    assert lat[i, j] == pytest.approx((sj_jp * 0.005 + 1 * 1.0) / 1000)
    # one multi-hop path by hand: Singapore - Sao Paulo
    i, j = SITE_ORDER.index("SG"), SITE_ORDER.index("BR-SP")
    path = nx.dijkstra_path(g, "SG", "BR-SP", weight="km")
    path_km = sum(g.edges[u, v]["km"] for u, v in itertools.pairwise(path))
    assert hops[i, j] == len(path) - 1 >= 2
    assert lat[i, j] == pytest.approx((path_km * 0.005 + (len(path) - 1) * 1.0) / 1000)
    # D picks the first D locations; the parameters of Eq. 2 are honoured
    np.testing.assert_allclose(latency_matrix_s(Config(dcs=4)), lat[:4, :4])
    faster = latency_matrix_s(CFG.replace(lambda_media_ms_per_km=0.0025, sigma_hop_ms=0.0))
    np.testing.assert_allclose(faster, km * 0.0025 / 1000)
