"""The 12 datacenter sites and their per-epoch signals (SPEC 4): carbon intensity, price, wet bulb, COP, GI.

This module owns everything that is a property of a place: the fixed site order, each site's coordinates and
time zone, its grid water intensity GI_d (its country's 2023 fuel mix x Macknick et al. 2012 water factors),
the Stull wet-bulb formula, the cooling-COP model, and the mapping of the bundled hourly 2023 series
(`topology/data/`, built by `topology/build_data.py`, origins in `topology/data/SOURCES.md`) onto the
simulator's epochs. The network between the sites lives in `topology/graph.py`.

All hourly series are UTC. Epoch 0 starts at 00:00 UTC of `cfg.start`; an epoch takes the value of the hour its
start falls in (hourly values are held constant within the hour).
"""
from __future__ import annotations

import csv
import datetime as dt
import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simcore.errors import ConfigError

SITE_ORDER = (
    "US-CAL-CISO", "DE-LU", "SG", "US-MIDA-PJM", "JP-TK", "CA-ON",
    "IN-WE", "BR-SP", "AU-NSW", "US-TEX-ERCO", "ZA", "KR",
)
DATA_DIR = Path(__file__).resolve().parent / "data"
DATA_YEAR_START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
HOURS_IN_DATA = 8760  # every hour of 2023, UTC
DATA_SPAN = "2023-01-01..2023-12-31"

S_PER_HOUR = 3600.0
LITRES_PER_US_GALLON = 3.785411784  # so gal/MWh x 3.785411784e-3 = L/kWh
KWH_PER_MWH = 1000.0
G_PER_KG = 1000.0

# codecarbon fuel (global_energy_mix.json, `<fuel>_TWh`) -> Macknick et al. 2012 technology (median, gal/MWh).
# The nine fuels add up to the country's total generation. Choices where the names differ:
# - oil: Macknick has no oil category. Oil-fired steam units consume like gas steam plants (240 once-through
#   to 826 with a cooling tower), combustion turbines and diesels almost nothing; the gas median ("gas-default",
#   287) lies in that range. Oil is <= 3.4 % of generation in every country here, so any choice in 0..826
#   moves GI_d by at most ~0.07 L/kWh.
# - hydroelectricity -> "hydro-default" (4491: reservoir evaporation attributed to generation, the median).
# - solar -> "solar-pv-default" (1): codecarbon does not split CSP out, and PV dominates in every country here.
# - biofuel -> "biopower-default" (303).
# - other_renewable_exc_biofuel -> "geothermal-default" (251): geothermal is most of that category.
FUELS = ("coal", "gas", "oil", "nuclear", "hydroelectricity", "solar", "wind", "biofuel",
         "other_renewable_exc_biofuel")
FUEL_TO_MACKNICK = {
    "coal": "coal-default",
    "gas": "gas-default",
    "oil": "gas-default",
    "nuclear": "nuclear-default",
    "hydroelectricity": "hydro-default",
    "solar": "solar-pv-default",
    "wind": "wind-default",
    "biofuel": "biopower-default",
    "other_renewable_exc_biofuel": "geothermal-default",
}
WATER_FACTOR_SETS = ("macknick2012",)  # the values cfg.water_factors may take


@dataclass(frozen=True)
class Site:
    """One datacenter location: zone id (Electricity Maps), city, coordinates (deg), IANA time zone, GI_d."""

    zone: str
    city: str
    lat: float
    lon: float
    timezone: str
    gi_l_per_kwh: float


# --- physics of a place -------------------------------------------------------------------------------------
def wet_bulb_c(temp_c, rh_pct):
    """Wet-bulb temperature, C, from air temperature (C) and relative humidity (%), elementwise.

    Stull (2011), "Wet-bulb temperature from relative humidity and air temperature", J. Appl. Meteor.
    Climatol. 50:2267-2269, Eq. 1; fitted for RH 5-99 % and T -20..50 C at sea-level pressure, error mostly
    within +-0.3 C (e.g. 20 C, 50 % -> 13.7 C). The sea-level fit is used at every site; at Johannesburg
    (1,734 m) lower pressure would lower the true wet bulb by a few tenths of a degree.
    """
    t = np.asarray(temp_c, dtype=float)
    rh = np.asarray(rh_pct, dtype=float)
    return (t * np.arctan(0.151977 * np.sqrt(rh + 8.313659))
            + np.arctan(t + rh) - np.arctan(rh - 1.676331)
            + 0.00391838 * rh ** 1.5 * np.arctan(0.023101 * rh)
            - 4.686035)


def cooling_cop(wet_bulb_c, cfg):
    """Cooling COP_d = cop_ref x (1 - cop_slope_per_c x (T_wb - cop_ref_wet_bulb_c)), clamped to [cop_min, cop_max].

    COP_ref = 4.78 is the HP Labs CRAC model COP(T) = 0.0068 T^2 + 0.0008 T + 0.458 at a 25 C supply temperature
    (Moore et al., "Making scheduling 'cool'", USENIX ATC 2005). The 2 %-per-degree loss of COP with wet bulb
    above 15 C is an assumption of this simulator (SPEC 4), not a measured figure.
    """
    twb = np.asarray(wet_bulb_c, dtype=float)
    cop = cfg.cop_ref * (1.0 - cfg.cop_slope_per_c * (twb - cfg.cop_ref_wet_bulb_c))
    return np.clip(cop, cfg.cop_min, cfg.cop_max)


def _gi_from_mix(mix_twh: dict, gal_per_mwh: dict) -> float:
    """GI = sum_f share_f x factor_f, with factor_f the Macknick median of the fuel's technology, in L/kWh."""
    total = sum(mix_twh[f] for f in FUELS)
    gal = sum(mix_twh[f] / total * gal_per_mwh[FUEL_TO_MACKNICK[f]] for f in FUELS)
    return gal * LITRES_PER_US_GALLON / KWH_PER_MWH


def grid_water_intensity_l_per_kwh(zone: str) -> float:
    """GI_d, L/kWh: water consumed by the grid per kWh delivered, from the zone's country's 2023 fuel mix.

    GI_d = sum over fuels f of (f's share of the country's 2023 generation, codecarbon) x (Macknick et al. 2012
    median operational consumption of f's technology, gal/MWh x 3.785e-3 = L/kWh). The fuel -> technology
    mapping is `FUEL_TO_MACKNICK` (coal, gas, nuclear by name; oil -> gas-default; hydroelectricity ->
    hydro-default; solar -> solar-pv-default; wind -> wind-default; biofuel -> biopower-default;
    other_renewable_exc_biofuel -> geothermal-default). Sub-national zones (US-*, CA-ON, IN-WE, BR-SP, AU-NSW,
    JP-TK) take their country's mix: the only per-fuel mix the sources give for every site.
    """
    b = _bundle()
    if zone not in b.index:
        raise ValueError(f"unknown zone {zone!r}; known: {', '.join(SITE_ORDER)}")
    return float(b.gi[b.index[zone]])


def load_sites(dcs: int) -> list[Site]:
    """The first `dcs` sites of SITE_ORDER."""
    if not (1 <= dcs <= len(SITE_ORDER)):
        raise ConfigError(f"--dcs {dcs}: there are {len(SITE_ORDER)} sites")
    return list(_bundle().sites[:dcs])


# --- signals per epoch ------------------------------------------------------------------------------------------
@dataclass
class SiteSignals:
    """Per-epoch, per-datacenter inputs of Eq. 6-10 for the first D sites over E epochs.

    ci_kg_per_kwh [E, D]   CI_{d,e}, direct grid carbon intensity, kgCO2eq/kWh
    tou_usd_per_kwh [E, D] TOU_{d,e}, electricity price, USD/kWh (may be negative: a real wholesale hour)
    cop [E, D]             COP_d of the cooling model (cfg.cop_mode: annual mean wet bulb, or hourly)
    wet_bulb_c [E, D]      the wet bulb that `cop` was computed from (the annual mean in "annual" mode), so
                           cop == cooling_cop(wet_bulb_c, cfg) always holds
    gi_l_per_kwh [D]       GI_d, grid water intensity, L/kWh
    """

    sites: list
    ci_kg_per_kwh: np.ndarray
    tou_usd_per_kwh: np.ndarray
    cop: np.ndarray
    wet_bulb_c: np.ndarray
    gi_l_per_kwh: np.ndarray


def epoch_hour_index(cfg) -> np.ndarray:
    """Index into the 2023 hourly series (0 = 2023-01-01 00:00 UTC) of the hour each epoch starts in, [E].

    Raises ConfigError when `cfg.start` is not a date or the horizon leaves 2023.
    """
    try:
        day = dt.date.fromisoformat(str(cfg.start))
    except ValueError:
        raise ConfigError(f"--start {cfg.start!r}: not a date (YYYY-MM-DD)") from None
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    offset_s = (start - DATA_YEAR_START).total_seconds()
    if not (0 <= offset_s < HOURS_IN_DATA * S_PER_HOUR):
        raise ConfigError(f"--start {cfg.start}: grid data covers {DATA_SPAN}")
    end = start + dt.timedelta(seconds=cfg.horizon_s)
    if offset_s + cfg.horizon_s > HOURS_IN_DATA * S_PER_HOUR:
        raise ConfigError(f"--start {cfg.start} with --hours {cfg.hours:g}: the run ends "
                          f"{end:%Y-%m-%d %H:%M} UTC, but grid data covers {DATA_SPAN}")
    epoch_start_s = offset_s + np.arange(cfg.epochs) * cfg.epoch_s
    # The small epsilon keeps an epoch that starts exactly on the hour in that hour despite float rounding.
    return np.floor(epoch_start_s / S_PER_HOUR + 1e-9).astype(np.int64)


def site_signals(cfg) -> SiteSignals:
    """CI, TOU, wet bulb and COP per epoch [E, D] and GI per datacenter [D] for D = cfg.dcs, E = cfg.epochs."""
    if cfg.water_factors not in WATER_FACTOR_SETS:
        raise ConfigError(f"water_factors {cfg.water_factors!r}: must be one of {', '.join(WATER_FACTOR_SETS)}")
    b = _bundle()
    d = cfg.dcs
    hours = epoch_hour_index(cfg)
    if cfg.cop_mode == "hourly":
        twb = b.wet_bulb_c[hours, :d]
    else:  # "annual": one COP per site, from its 2023 mean wet bulb
        twb = np.broadcast_to(b.annual_wet_bulb_c[:d], (len(hours), d)).copy()
    return SiteSignals(
        sites=list(b.sites[:d]),
        ci_kg_per_kwh=b.ci_g_per_kwh[hours, :d] / G_PER_KG,
        tou_usd_per_kwh=b.price_usd_per_mwh[hours, :d] / KWH_PER_MWH,
        cop=cooling_cop(twb, cfg),
        wet_bulb_c=twb,
        gi_l_per_kwh=b.gi[:d].copy(),
    )


# --- the bundle ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Bundle:
    sites: tuple            # Site, in SITE_ORDER
    index: dict             # zone -> column
    ci_g_per_kwh: np.ndarray        # [8760, 12]
    price_usd_per_mwh: np.ndarray   # [8760, 12]
    wet_bulb_c: np.ndarray          # [8760, 12]
    annual_wet_bulb_c: np.ndarray   # [12]
    gi: np.ndarray                  # [12], L/kWh


def _read_hourly(name: str) -> np.ndarray:
    """One bundled hourly file as a float array [8760, 12], checking its columns are SITE_ORDER."""
    path = DATA_DIR / name
    with gzip.open(path, "rt") as f:
        header = f.readline().strip().split(",")
        if tuple(header[1:]) != SITE_ORDER:
            raise RuntimeError(f"{path}: columns {header[1:]} are not SITE_ORDER; rebuild with topology.build_data")
        a = np.loadtxt(f, delimiter=",", usecols=range(1, len(SITE_ORDER) + 1), dtype=float)
    if a.shape != (HOURS_IN_DATA, len(SITE_ORDER)):
        raise RuntimeError(f"{path}: shape {a.shape}, expected ({HOURS_IN_DATA}, {len(SITE_ORDER)})")
    return a


def _read_csv(name: str) -> list[dict]:
    with open(DATA_DIR / name, newline="") as f:
        return list(csv.DictReader(f))


@functools.lru_cache(maxsize=1)
def _bundle() -> _Bundle:
    """Read `topology/data/` once per process (the tests and the engine call site_signals many times)."""
    factors = {r["technology"]: float(r["gal_per_mwh"]) for r in _read_csv("water_factors_gal_per_mwh.csv")}
    mixes = {r["country_iso3"]: {f: float(r[f]) for f in FUELS} for r in _read_csv("fuel_mix_2023_twh.csv")}
    rows = {r["zone"]: r for r in _read_csv("sites.csv")}
    sites = tuple(
        Site(zone=z, city=rows[z]["city"], lat=float(rows[z]["lat"]), lon=float(rows[z]["lon"]),
             timezone=rows[z]["timezone"], gi_l_per_kwh=_gi_from_mix(mixes[rows[z]["country_iso3"]], factors))
        for z in SITE_ORDER
    )
    twb = wet_bulb_c(_read_hourly("temperature_c.csv.gz"), _read_hourly("rel_humidity_pct.csv.gz"))
    arrays = {
        "ci_g_per_kwh": _read_hourly("carbon_direct_g_per_kwh.csv.gz"),
        "price_usd_per_mwh": _read_hourly("price_usd_per_mwh.csv.gz"),
        "wet_bulb_c": twb,
        "annual_wet_bulb_c": twb.mean(axis=0),
        "gi": np.array([s.gi_l_per_kwh for s in sites]),
    }
    for a in arrays.values():
        a.setflags(write=False)  # shared by every caller: slices handed out are copies
    return _Bundle(sites=sites, index={z: i for i, z in enumerate(SITE_ORDER)}, **arrays)
