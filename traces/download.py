"""`python -m traces.download`: fetch a BurstGPT release CSV for users who have internet (SPEC 3).

    python -m traces.download --release 1 --out DIR [--without-fails] [--url-base URL]

BurstGPT (Wang et al., KDD 2025, CC-BY-4.0) publishes its traces as GitHub release assets named
`BurstGPT_<r>.csv` and `BurstGPT_without_fails_<r>.csv` (r = 1, 2, 3). Which release tag holds a file has moved
over time (v1.1 for releases 1-2; the upstream README names v1.2 for all six; v2.0 is also cited), so without
`--url-base` the tags of DEFAULT_TAGS are tried in order and the first that has the file is used. `--url-base`
(any urllib URL, e.g. `file:///some/dir` for an offline mirror) replaces that list.

The file is written under a temporary name in DIR and renamed only once complete and once its header passes the
loader's BurstGPT format check, so DIR never holds a half file. Failures (network, HTTP 404, bad header) print one
line on stderr and exit with code 2. The result loads with `--trace DIR/BurstGPT_<r>.csv`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from simcore.errors import TraceError
from simcore.folders import make_dirs, remove_made_dirs
from traces.loader import detect_format

RELEASES = (1, 2, 3)
REPO_URL = "https://github.com/HPMLL/BurstGPT/releases/download"
DEFAULT_TAGS = ("v1.1", "v1.2", "v2.0")
_CHUNK = 1 << 20


def file_name(release: int, without_fails: bool = False) -> str:
    return f"BurstGPT_without_fails_{release}.csv" if without_fails else f"BurstGPT_{release}.csv"


def candidate_urls(release: int, without_fails: bool = False, url_base: str | None = None) -> list[str]:
    name = file_name(release, without_fails)
    bases = [url_base] if url_base else [f"{REPO_URL}/{tag}" for tag in DEFAULT_TAGS]
    return [f"{b.rstrip('/')}/{name}" for b in bases]


def _progress(total: int | None, name: str):
    """A tqdm bar where tqdm is installed (it is optional) and stderr is a terminal; otherwise nothing."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=name, file=sys.stderr,
                disable=None)  # None: no bar when stderr is not a terminal (logs, CI)


def fetch(url: str, dest: Path, timeout_s: float) -> None:
    """Stream `url` into `dest` (a new file in its folder), then check the header, then rename into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            length = resp.headers.get("Content-Length")
            bar = _progress(int(length) if length and length.isdigit() else None, dest.name)
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        try:
            fmt = detect_format(tmp)
        except TraceError as e:  # name the URL, not the temporary file
            raise TraceError(f"{url}:{str(e)[len(tmp) + 1:]}") from None
        if fmt != "burstgpt":
            raise TraceError(f"{url}:1: header is {fmt} format, not BurstGPT")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; give it the mode a plain new file gets
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m traces.download", description="Fetch a BurstGPT release CSV.")
    ap.add_argument("--release", type=int, choices=RELEASES, required=True, help="BurstGPT release number")
    ap.add_argument("--out", type=Path, required=True, help="folder to write the CSV into (created if missing)")
    ap.add_argument("--without-fails", action="store_true", help="the variant without zero-response rows")
    ap.add_argument("--url-base", default=None, help=f"fetch from URL_BASE/<file> instead of {REPO_URL}/<tag>/")
    ap.add_argument("--timeout-s", type=float, default=60.0, help="network timeout per read, seconds")
    args = ap.parse_args(argv)

    dest = args.out / file_name(args.release, args.without_fails)
    try:  # the folders this command made are removed again if nothing is downloaded
        created = make_dirs(args.out)
    except OSError as e:
        print(f"download: cannot create {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    urls = candidate_urls(args.release, args.without_fails, args.url_base)
    last = ""
    for url in urls:
        try:
            fetch(url, dest, args.timeout_s)
        except urllib.error.HTTPError as e:
            last = f"{url}: HTTP {e.code} {e.reason}"
            if e.code == 404:  # try the next release tag
                continue
            break
        except urllib.error.URLError as e:
            last = f"{url}: {e.reason}"
            if isinstance(e.reason, FileNotFoundError):  # file:// mirror without this file: like a 404
                continue
            break
        except TraceError as e:
            last = str(e)
            break
        except (OSError, ValueError) as e:  # socket timeouts, disk full, malformed URL
            last = f"{url}: {e}"
            break
        print(f"{dest}", file=sys.stdout)
        return 0
    remove_made_dirs(created)
    print(f"download: {last}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
