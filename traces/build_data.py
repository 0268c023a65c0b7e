"""Regenerates the compact bundle in `traces/data/` from the real traces under `/work/shared/data/traces/`.

Run once by a maintainer (`python -m traces.build_data [--src DIR]`); the tests never run it, they read the
committed output. It writes, and checks against the published totals:

- `azure2024_code_week_per_second.npz`: `counts` (uint8, 7 x 86,400: requests per UTC second of each day of the
  Azure LLM inference trace 2024, code, 2024-05-10..16) and `days` (the 7 ISO dates). The busiest second holds
  146 requests, so uint8 is exact; the build refuses anything that would not fit.
- `azure2023_token_pairs.csv.gz`: `source,ContextTokens,GeneratedTokens` of every request of the Azure LLM
  inference trace 2023 code and conversation files (source = `code` or `conv`), in file order.
- `burstgpt1_hour_of_day_avg_requests.csv`: BurstGPT_1's mean requests per hour of day, copied unchanged.
- `azure2023_hours.csv.gz`: `source,offset_ms,ContextTokens,GeneratedTokens` of every request of the same two
  Azure 2023 files with its arrival: milliseconds since the file's first request's whole second (file order;
  the files are in time order, checked).
- the CC-BY-4.0 licence texts of the Azure Public Dataset and of BurstGPT (`LICENSE-*-CC-BY-4.0.txt`).

`LICENSE-drafas-MIT.txt` (the per-second binning came from tu-nv/drafas) and `SOURCES.md` are kept by hand.
numpy stamps the .npz members with the build time, so a rebuild may differ in bytes but not in content.
"""
from __future__ import annotations

import argparse
import gzip
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_SRC = Path("/work/shared/data/traces")
OUT = Path(__file__).resolve().parent / "data"

WEEK_DAYS = tuple(f"2024-05-{d:02d}" for d in range(10, 17))
SECONDS_PER_DAY = 86_400
WEEK_TOTAL = 16_803_695  # the published row count of AzureLLMInferenceTrace_code_1week.csv

COUNTS_FILE = "azure2024_code_week_per_second.npz"
PAIRS_FILE = "azure2023_token_pairs.csv.gz"
PROFILE_FILE = "burstgpt1_hour_of_day_avg_requests.csv"
HOURS_FILE = "azure2023_hours.csv.gz"
LICENCES = {  # bundle name <- path under the source folder
    "LICENSE-AzurePublicDataset-CC-BY-4.0.txt": "azure2023/LICENSE",
    "LICENSE-BurstGPT-CC-BY-4.0.txt": "burstgpt-docs/LICENSE_CC-BY-4.0.txt",
}


def build_counts(src: Path) -> np.ndarray:
    rows = []
    for day in WEEK_DAYS:
        a = np.loadtxt(src / "azure2024-code-week" / "raw" / f"{day}.txt", dtype=np.int64)
        if a.shape != (SECONDS_PER_DAY, 2) or not (a[:, 0] == 1).all():
            raise SystemExit(f"{day}: expected {SECONDS_PER_DAY} lines '1 <count>', got shape {a.shape}")
        rows.append(a[:, 1])
    counts = np.stack(rows)
    if counts.min() < 0 or counts.max() > np.iinfo(np.uint8).max:
        raise SystemExit(f"per-second counts span {counts.min()}..{counts.max()}: do not fit uint8")
    if int(counts.sum()) != WEEK_TOTAL:
        raise SystemExit(f"week total {int(counts.sum())} != published {WEEK_TOTAL}")
    return counts.astype(np.uint8)


def build_pairs(src: Path) -> pd.DataFrame:
    parts = []
    for tag, name in (("code", "AzureLLMInferenceTrace_code.csv"), ("conv", "AzureLLMInferenceTrace_conv.csv")):
        df = pd.read_csv(src / "azure2023" / name, usecols=["ContextTokens", "GeneratedTokens"], dtype=np.int64)
        df.insert(0, "source", tag)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def build_hours(src: Path) -> pd.DataFrame:
    parts = []
    for tag, name in (("code", "AzureLLMInferenceTrace_code.csv"), ("conv", "AzureLLMInferenceTrace_conv.csv")):
        df = pd.read_csv(src / "azure2023" / name, dtype={"ContextTokens": np.int64, "GeneratedTokens": np.int64})
        ts = pd.to_datetime(df.pop("TIMESTAMP"), format="ISO8601")
        ms = ((ts - ts.iloc[0].floor("s")).dt.total_seconds() * 1000.0).round().astype(np.int64)
        if (ms.diff().dropna() < 0).any():
            raise SystemExit(f"{name}: timestamps not in order")
        df.insert(0, "offset_ms", ms)
        df.insert(0, "source", tag)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def _write_gz(df: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    # mtime=0 so that rebuilding identical data gives an identical file (no spurious git diff)
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue().encode())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="the shared traces folder")
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)

    counts = build_counts(args.src)
    np.savez_compressed(OUT / COUNTS_FILE, counts=counts, days=np.array(WEEK_DAYS))

    pairs = build_pairs(args.src)
    _write_gz(pairs, OUT / PAIRS_FILE)
    hours = build_hours(args.src)
    _write_gz(hours, OUT / HOURS_FILE)

    shutil.copyfile(args.src / "burstgpt-derived" / PROFILE_FILE, OUT / PROFILE_FILE)
    for dst, rel in LICENCES.items():
        shutil.copyfile(args.src / rel, OUT / dst)

    print(f"counts {counts.shape} total {int(counts.sum()):,}; per day "
          + ", ".join(f"{d} {int(c):,}" for d, c in zip(WEEK_DAYS, counts.sum(axis=1, dtype=np.int64))))
    print(f"hours: " + ", ".join(f"{k} {(hours.source == k).sum():,} requests over "
                                  f"{hours.offset_ms[hours.source == k].max() / 1000:.0f} s" for k in ("code", "conv")))
    print(f"token pairs {len(pairs):,} ({(pairs.source == 'code').sum():,} code, {(pairs.source == 'conv').sum():,} conv)")


if __name__ == "__main__":
    main()
