"""Regenerate the compact data bundle in `topology/data/` from the raw public files in /work/shared/data.

Not run by the tests (they read the committed bundle); run it by hand when the raw data change:

    .venv/bin/python -m topology.build_data [--src /work/shared/data] [--out topology/data]

What it writes (12 sites, in `topology.sites.SITE_ORDER`; every hourly file has one row per UTC hour of 2023,
8,760 rows, a `utc_hour` column then one column per zone):

- `sites.csv`                        zone, city, country ISO3, lat, lon, time zone, elevation (Open-Meteo files)
- `carbon_direct_g_per_kwh.csv.gz`   direct grid carbon intensity, gCO2eq/kWh (green-dcc / Electricity Maps)
- `price_usd_per_mwh.csv.gz`         electricity price, USD/MWh, negative hours kept (green-dcc)
- `temperature_c.csv.gz`             2 m air temperature, C (green-dcc / Open-Meteo)
- `rel_humidity_pct.csv.gz`          2 m relative humidity, % (green-dcc / Open-Meteo)
- `fuel_mix_2023_twh.csv`            per-country 2023 generation by fuel, TWh (codecarbon)
- `water_factors_gal_per_mwh.csv`    the Macknick et al. 2012 median factors that `sites.FUEL_TO_MACKNICK` uses

Time handling (checked against the data, see SOURCES.md):
- carbon: `Datetime (UTC)` is UTC, hour-beginning (the solar dip of CAISO, DE, JP, AU, KR falls at local noon).
- price: `Datetime (UTC)` is UTC (it agrees with the `Datetime (Local)` column). IN-WE rows start at hh:30 UTC
  (Indian market hours are IST hours, UTC+5:30): a UTC hour is then the time-weighted mean of the two market
  hours it overlaps (half each).
- weather: Open-Meteo `time` is LOCAL time at one fixed offset (`utc_offset_seconds`, the offset on the day the
  file was fetched; the series has no DST gap or repeat), which the diurnal cycle confirms (every site peaks at
  13-16 h in that clock). UTC = time - utc_offset_seconds. Mumbai's offset (+05:30) puts its readings at
  hh:30 UTC: they are interpolated linearly in time onto the whole UTC hours. The shift leaves up to 11 hours
  of 2023 uncovered at one end of the year.
Gaps: after aligning to the 8,760 UTC hours, duplicates are dropped (first kept), interior gaps are filled by
linear interpolation between the nearest valid hours, and gaps at the ends of the year by the value of the same
hour on the nearest covered day (so the diurnal cycle is kept). The script prints what it filled.
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from topology.sites import FUEL_TO_MACKNICK, FUELS, SITE_ORDER

SRC_DEFAULT = Path("/work/shared/data")
OUT_DEFAULT = Path(__file__).resolve().parent / "data"
YEAR_HOURS = pd.date_range("2023-01-01", "2023-12-31 23:00", freq="h", tz="UTC")

# City of each site (SPEC 4; the Open-Meteo file of US-MIDA-PJM is at Philadelphia) and its country for the
# fuel mix: the codecarbon mix is per country, so sub-national zones take their country's mix.
CITY = {
    "US-CAL-CISO": ("San Jose", "USA"), "DE-LU": ("Frankfurt", "DEU"), "SG": ("Singapore", "SGP"),
    "US-MIDA-PJM": ("Philadelphia", "USA"), "JP-TK": ("Tokyo", "JPN"), "CA-ON": ("Toronto", "CAN"),
    "IN-WE": ("Mumbai", "IND"), "BR-SP": ("Sao Paulo", "BRA"), "AU-NSW": ("Sydney", "AUS"),
    "US-TEX-ERCO": ("Dallas", "USA"), "ZA": ("Johannesburg", "ZAF"), "KR": ("Seoul", "KOR"),
}
# Rounding of the bundle: the sources' own precision or finer than any effect the simulator resolves.
DECIMALS = {"carbon": 2, "price": 2, "temperature": 1, "humidity": 0}


def fill_to_year(s: pd.Series, what: str, log: list) -> pd.Series:
    """Align a UTC-indexed series to the 8,760 hours of 2023 and fill its gaps (see the module docstring)."""
    dup = int(s.index.duplicated().sum())
    s = s[~s.index.duplicated(keep="first")].reindex(YEAR_HOURS)
    missing = s.isna()
    s = s.interpolate(method="time", limit_area="inside")
    interior = int(missing.sum() - s.isna().sum())
    edge = int(s.isna().sum())
    # End gaps: copy the same hour of the nearest covered day (repeat while a day is still missing).
    if s.isna().all():
        raise SystemExit(f"{what}: no value falls on a whole UTC hour of 2023")
    while s.isna().any():
        s = s.fillna(s.shift(24)).fillna(s.shift(-24))
    if dup or interior or edge:
        log.append(f"{what}: {dup} duplicate hours dropped, {interior} interior hours interpolated, "
                   f"{edge} hours at the year's ends filled from the same hour of the adjacent day")
    return s


def read_carbon(src: Path, zone: str, log: list) -> pd.Series:
    df = pd.read_csv(src / f"carbon/green-dcc/{zone}_2023_hourly.csv")
    t = pd.to_datetime(df["Datetime (UTC)"]).dt.tz_localize("UTC")
    s = pd.Series(df["Carbon Intensity gCO₂eq/kWh (direct)"].to_numpy(float), index=t)
    return fill_to_year(s.dropna(), f"{zone} carbon", log)


def read_price(src: Path, zone: str, log: list) -> pd.Series:
    df = pd.read_csv(src / f"price/green-dcc/{zone}_electricity_prices_2023.csv")
    t = pd.DatetimeIndex(pd.to_datetime(df["Datetime (UTC)"], utc=True))
    local = pd.to_datetime(df["Datetime (Local)"].map(pd.Timestamp.fromisoformat).map(lambda x: x.tz_convert("UTC")))
    if not (local.to_numpy() == t.to_numpy()).all():
        raise SystemExit(f"{zone} price: UTC and local columns disagree")
    s = pd.Series(df["Price (USD/MWh)"].to_numpy(float), index=t).dropna()
    minutes = set(s.index.minute)
    if minutes != {0}:
        if len(minutes) != 1:
            raise SystemExit(f"{zone} price: mixed minute offsets {sorted(minutes)}")
        m = minutes.pop()
        # A market hour starting at hh:m covers (60-m) minutes of UTC hour hh and m minutes of hour hh+1.
        cur = pd.Series(s.to_numpy(), index=s.index.floor("h"))
        prev = cur.shift(1, freq="h").reindex(cur.index)
        s = (cur * (60 - m) + prev.fillna(cur) * m) / 60.0
        log.append(f"{zone} price: market hours start at hh:{m:02d} UTC; each UTC hour is the time-weighted mean "
                   f"of the two market hours it overlaps")
    return fill_to_year(s, f"{zone} price", log)


def _on_whole_hours(s: pd.Series) -> pd.Series:
    """A site whose UTC offset is not whole hours (Mumbai, +05:30) has readings at hh:30 UTC: interpolate them
    in time onto the whole UTC hours."""
    if (s.index.minute == 0).all():
        return s
    both = s.reindex(s.index.union(YEAR_HOURS)).interpolate(method="time", limit_area="inside")
    return both.reindex(YEAR_HOURS).dropna()


def read_weather(src: Path, zone: str, log: list) -> tuple[dict, pd.Series, pd.Series]:
    w = json.loads((src / f"weather/{zone}_2023.json").read_text())
    h = w["hourly"]
    local = pd.DatetimeIndex(pd.to_datetime(h["time"]))
    if not (local[1:] - local[:-1] == pd.Timedelta(hours=1)).all():
        raise SystemExit(f"{zone} weather: times are not one fixed-offset hourly series")
    utc = (local - pd.Timedelta(seconds=w["utc_offset_seconds"])).tz_localize("UTC")
    temp = _on_whole_hours(pd.Series(np.asarray(h["temperature_2m"], float), index=utc).dropna())
    rh = _on_whole_hours(pd.Series(np.asarray(h["relative_humidity_2m"], float), index=utc).dropna())
    meta = {k: w[k] for k in ("latitude", "longitude", "timezone", "elevation", "utc_offset_seconds")}
    return meta, fill_to_year(temp, f"{zone} temperature", log), fill_to_year(rh, f"{zone} humidity", log)


def write_hourly(path: Path, cols: dict, decimals: int) -> None:
    df = pd.DataFrame({z: cols[z].round(decimals).to_numpy() for z in SITE_ORDER})
    df = df + 0.0  # turns -0.0 into 0.0
    df.insert(0, "utc_hour", YEAR_HOURS.strftime("%Y-%m-%dT%H:%MZ"))
    # mtime=0 and no file name in the gzip header: rebuilding unchanged data gives identical bytes.
    text = df.to_csv(index=False, float_format=f"%.{decimals}f", lineterminator="\n").encode()
    with open(path, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
        g.write(text)


def build(src: Path, out: Path) -> list:
    out.mkdir(parents=True, exist_ok=True)
    log: list = []
    carbon, price, temp, rh, rows = {}, {}, {}, {}, []
    for z in SITE_ORDER:
        carbon[z] = read_carbon(src, z, log)
        price[z] = read_price(src, z, log)
        meta, temp[z], rh[z] = read_weather(src, z, log)
        city, iso3 = CITY[z]
        rows.append({"zone": z, "city": city, "country_iso3": iso3, "lat": round(meta["latitude"], 4),
                     "lon": round(meta["longitude"], 4), "timezone": meta["timezone"],
                     "elevation_m": meta["elevation"]})
    pd.DataFrame(rows).to_csv(out / "sites.csv", index=False, lineterminator="\n")
    write_hourly(out / "carbon_direct_g_per_kwh.csv.gz", carbon, DECIMALS["carbon"])
    write_hourly(out / "price_usd_per_mwh.csv.gz", price, DECIMALS["price"])
    write_hourly(out / "temperature_c.csv.gz", temp, DECIMALS["temperature"])
    write_hourly(out / "rel_humidity_pct.csv.gz", rh, DECIMALS["humidity"])

    mix = json.loads((src / "carbon/codecarbon/global_energy_mix.json").read_text())
    mrows = []
    for iso3 in sorted({c for _, c in CITY.values()}):
        m = mix[iso3]
        r = {"country_iso3": iso3, "country": m["country_name"], "year": m["year"]}
        r.update({f: m[f"{f}_TWh"] for f in FUELS})
        r["total"] = m["total_TWh"]
        if abs(sum(r[f] for f in FUELS) - r["total"]) > 0.01 * r["total"]:
            raise SystemExit(f"{iso3}: fuels do not add up to total_TWh")
        mrows.append(r)
    pd.DataFrame(mrows).to_csv(out / "fuel_mix_2023_twh.csv", index=False, lineterminator="\n")

    factors = json.loads((src / "water/macknick2012/intensities.json").read_text())["water"]
    used = sorted(set(FUEL_TO_MACKNICK.values()))
    pd.DataFrame({"technology": used, "gal_per_mwh": [factors[k] for k in used]}).to_csv(
        out / "water_factors_gal_per_mwh.csv", index=False, lineterminator="\n")

    # Licence texts that must travel with the excerpts (SOURCES.md names the rest).
    shutil.copyfile(src / "carbon/green-dcc/LICENSE_green-dcc_MIT.txt", out / "LICENSE_green-dcc_MIT.txt")
    shutil.copyfile(src / "carbon/codecarbon/LICENSE", out / "LICENSE_codecarbon_MIT.txt")
    return log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=SRC_DEFAULT, help="raw data folder (default %(default)s)")
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT, help="bundle folder (default %(default)s)")
    a = ap.parse_args()
    for line in build(a.src, a.out):
        print(line)
    total = sum(p.stat().st_size for p in a.out.iterdir() if p.is_file())
    print(f"bundle: {a.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
