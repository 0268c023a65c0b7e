"""Sites, signals and the backbone: real values, hand-checked."""
import gzip
import math

import numpy as np
import pytest

from simcore.config import Config
from simcore.errors import ConfigError
from topology.graph import build_backbone, great_circle_km, latency_matrix_s, path_km_hops
from topology.sites import (DATA_DIR, SITE_ORDER, cooling_cop, grid_water_intensity_l_per_kwh, load_sites,
                            site_signals, wet_bulb_c)


def test_great_circle_matches_law_of_cosines():
    sj, fr = load_sites(2)
    p1, p2 = math.radians(sj.lat), math.radians(fr.lat)
    dl = math.radians(fr.lon - sj.lon)
    expected = 6371.0 * math.acos(math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl))
    assert great_circle_km(sj.lat, sj.lon, fr.lat, fr.lon) == pytest.approx(expected, rel=1e-9)
    assert 9000 < expected < 9300  # San Jose - Frankfurt


def test_stull_wet_bulb():
    assert wet_bulb_c(20.0, 50.0) == pytest.approx(13.7, abs=0.05)  # Stull (2011) worked example


def test_cop_reference_and_clamps():
    c = Config()
    assert cooling_cop(15.0, c) == pytest.approx(4.78)
    assert cooling_cop(25.0, c) == pytest.approx(4.78 * 0.8)
    assert cooling_cop(200.0, c) == 2.0 and cooling_cop(-200.0, c) == 8.0


def test_grid_water_intensity_by_hand():
    rows = (DATA_DIR / "fuel_mix_2023_twh.csv").read_text().splitlines()
    header = rows[0].split(",")
    can = dict(zip(header, next(r for r in rows if r.startswith("CAN")).split(",")))
    factors = dict(line.split(",") for line in (DATA_DIR / "water_factors_gal_per_mwh.csv").read_text().splitlines()[1:])
    fuels = {"coal": "coal-default", "gas": "gas-default", "oil": "gas-default", "nuclear": "nuclear-default",
             "hydroelectricity": "hydro-default", "solar": "solar-pv-default", "wind": "wind-default",
             "biofuel": "biopower-default", "other_renewable_exc_biofuel": "geothermal-default"}
    total = sum(float(can[f]) for f in fuels)
    gi = sum(float(can[f]) / total * float(factors[t]) for f, t in fuels.items()) * 3.785411784e-3
    assert grid_water_intensity_l_per_kwh("CA-ON") == pytest.approx(gi, rel=1e-6)
    assert 5 < gi < 15  # hydro-heavy Canada


def test_latency_matrix_properties_and_one_entry_by_hand():
    cfg = Config(dcs=12)
    lat = latency_matrix_s(cfg)
    km, hops = path_km_hops(cfg)
    np.testing.assert_allclose(lat, lat.T)
    assert np.all(np.diag(lat) == 0)
    # shortest paths: no two-leg detour is shorter
    for i in range(12):
        for j in range(12):
            assert km[i, j] <= (km[i, :] + km[:, j]).min() + 1e-6
    g = build_backbone(cfg)
    sj_jp = g.edges["US-CAL-CISO", "JP-TK"]["km"]
    i, j = SITE_ORDER.index("US-CAL-CISO"), SITE_ORDER.index("JP-TK")
    assert hops[i, j] == 1 and km[i, j] == pytest.approx(sj_jp)
    assert lat[i, j] == pytest.approx((sj_jp * 0.005 + 1 * 1.0) / 1000)
    assert latency_matrix_s(Config(dcs=4)).shape == (4, 4)


def test_signals_shapes_ranges_and_a_known_price():
    cfg = Config(dcs=8, hours=24)
    s = site_signals(cfg)
    assert s.ci_kg_per_kwh.shape == (96, 8) and s.cop.shape == (96, 8) and s.gi_l_per_kwh.shape == (8,)
    assert np.all((s.ci_kg_per_kwh > 0.0) & (s.ci_kg_per_kwh < 1.2))
    assert np.all((s.cop >= 2) & (s.cop <= 8))
    with gzip.open(DATA_DIR / "price_usd_per_mwh.csv.gz", "rt") as f:
        header = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f]
    hour = next(k for k, r in enumerate(rows) if r[0].startswith("2023-07-03T13"))
    price = float(rows[hour][header.index("DE-LU")])
    e = 13 * 4 + 2  # 13:30 UTC falls in hour 13
    assert s.tou_usd_per_kwh[e, 1] == pytest.approx(price / 1000)
    assert np.all(s.cop[:, 0] == s.cop[0, 0])  # annual COP is constant


def test_hourly_cop_varies_and_start_outside_data_is_refused():
    s = site_signals(Config(dcs=4, cop_mode="hourly"))
    assert np.ptp(s.cop[:, 0]) > 0
    with pytest.raises(ConfigError, match="2024-06-01"):
        site_signals(Config(dcs=4, start="2024-06-01"))
