"""``mcreid-search``: search an identity store by photo, print one person's history, forget a person.

    mcreid-search --store lab.store --image crop.jpg [--image more.jpg] [--top 5] [--json]
    mcreid-search --store lab.store --identity 12 [--json]
    mcreid-search --store lab.store --forget 12
    mcreid-search --store lab.store --retention-days 30
    mcreid-search --store lab.store               # a summary of the store

Photos are embedded with the re-ID model the store was written with (its file is recorded in the
store; ``--reid`` points at it if it moved; another model is refused). Thumbnails of the results are
written as JPEG files to ``--thumbnails DIR`` (a folder readable by the user only) and their paths
printed. Exit codes: 0 done, 1 no such identity / erased data still found, 2 bad options, photo,
model or store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Sequence

from mcreid.logs import setup_logging
from tracker.config import REID_INPUTS
from tracker.store.base import IdentityStore, SearchHit, Sighting, StoreError
from tracker.store.sqlite_store import open_store

log = logging.getLogger("mcreid-search")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcreid-search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, type=Path, help="the identity store (python -m tracker run --store)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--image", action="append", type=Path, default=None,
                        help="photo of one person (cropped to the person); repeat for several photos of them")
    action.add_argument("--identity", type=int, default=None, help="print every sighting of this global id")
    action.add_argument("--forget", type=int, default=None,
                        help="erase this global id entirely (sightings, thumbnails, vectors), then VACUUM and check "
                             "that nothing of it is left in the file")
    action.add_argument("--retention-days", type=float, default=None,
                        help="drop sightings older than this many days now (and identities left with nothing)")
    parser.add_argument("--top", type=int, default=5, help="identities to list (default: 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--thumbnails", type=Path, default=None,
                        help="folder for the results' thumbnails (default: a private folder in the temp dir)")
    parser.add_argument("--reid", default=None,
                        help="the store's re-ID model file, if it is no longer where the store recorded it")
    parser.add_argument("--reid-input", default=None, choices=REID_INPUTS,
                        help="a per-image re-ID model's input format (as given to the tracker)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def when(seconds: float | None) -> str:
    """Local wall-clock time, to the second ("-" for None)."""
    return "-" if seconds is None else datetime.fromtimestamp(seconds).isoformat(sep=" ", timespec="seconds")


def iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def thumbnail_dir(given: Path | None, store_path: Path) -> Path:
    """The folder thumbnails are written to, created readable by the user only."""
    folder = given or Path(tempfile.gettempdir()) / f"mcreid-search-{os.getuid() if hasattr(os, 'getuid') else 0}" \
        / store_path.stem
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def write_thumbnail(store: IdentityStore, sighting_id: int, path: Path) -> str | None:
    data = store.thumbnail(sighting_id) if sighting_id else None
    if data is None:
        return None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return str(path)


def places(sightings: Sequence[Sighting]) -> list[dict[str, object]]:
    """Sightings grouped by run and camera: frames, seconds into the source and wall-clock range."""
    groups: dict[tuple[int, str], list[Sighting]] = {}
    for s in sightings:
        groups.setdefault((s.run_id, s.camera_id), []).append(s)
    out = []
    for (run, camera), group in sorted(groups.items(), key=lambda kv: min(s.started_at for s in kv[1])):
        out.append({"run": run, "camera": camera, "source": group[0].source, "tracks": len(group),
                    "first_frame": min(s.first_frame for s in group), "last_frame": max(s.last_frame for s in group),
                    "first_time_s": round(min(s.first_time_s for s in group), 2),
                    "last_time_s": round(max(s.last_time_s for s in group), 2),
                    "started_at": min(s.started_at for s in group), "ended_at": max(s.ended_at for s in group)})
    return out


def hit_record(store: IdentityStore, hit: SearchHit, rank: int, folder: Path) -> dict[str, object]:
    ident = hit.identity
    thumb = write_thumbnail(store, hit.best_sighting, folder / f"identity_{ident.global_id}.jpg")
    return {"rank": rank, "global_id": ident.global_id, "similarity": round(hit.similarity, 4),
            "cameras": list(ident.cameras), "runs": list(ident.runs), "sightings": ident.sightings,
            "clips": ident.signature.count, "first_seen": iso(ident.first_seen_at), "last_seen": iso(ident.last_seen_at),
            "thumbnail": thumb, "where": [{**p, "started_at": iso(p["started_at"]), "ended_at": iso(p["ended_at"])}
                                          for p in places(store.history(ident.global_id))]}


def print_hits(records: list[dict[str, object]]) -> None:
    if not records:
        print("no identities in the store")
        return
    print(f"{'rank':>4}  {'id':>5}  {'similarity':>10}  {'sightings':>9}  cameras")
    for r in records:
        print(f"{r['rank']:>4}  {'#' + str(r['global_id']):>5}  {r['similarity']:>10.3f}  {r['sightings']:>9}  "
              f"{', '.join(r['cameras'])}")
        for p in r["where"]:
            print(f"{'':>14}run {p['run']} {p['camera']}: frames {p['first_frame']}-{p['last_frame']} "
                  f"({p['first_time_s']:.1f}-{p['last_time_s']:.1f} s into {p['source']}), "
                  f"{p['started_at'][:19].replace('T', ' ')} - {p['ended_at'][11:19]}")
        print(f"{'':>14}thumbnail: {r['thumbnail'] or '-'}")


def history_record(store: IdentityStore, gid: int, folder: Path) -> dict[str, object]:
    ident = store.identity(gid)
    rows = []
    for s in store.history(gid):
        thumb = write_thumbnail(store, s.sighting_id, folder / f"identity_{gid}_sighting_{s.sighting_id}.jpg") \
            if s.has_thumbnail else None
        rows.append({"run": s.run_id, "camera": s.camera_id, "source": s.source, "track_id": s.track_id,
                     "first_frame": s.first_frame, "last_frame": s.last_frame,
                     "first_time_s": round(s.first_time_s, 2), "last_time_s": round(s.last_time_s, 2),
                     "started_at": iso(s.started_at), "ended_at": iso(s.ended_at), "clips": s.clip_count,
                     "ended": s.ended, "thumbnail": thumb})
    return {"global_id": gid, "cameras": list(ident.cameras), "runs": list(ident.runs), "clips": ident.signature.count,
            "first_seen": iso(ident.first_seen_at), "last_seen": iso(ident.last_seen_at), "sightings": rows}


def print_history(record: dict[str, object]) -> None:
    print(f"identity #{record['global_id']}: {len(record['sightings'])} sightings in runs "
          f"{', '.join(map(str, record['runs']))}, cameras {', '.join(record['cameras'])}, {record['clips']} clips; "
          f"first seen {record['first_seen'][:19].replace('T', ' ')}, last seen {record['last_seen'][:19].replace('T', ' ')}")
    for s in record["sightings"]:
        state = "" if s["ended"] else " (live at the last commit)"
        print(f"  {s['started_at'][:19].replace('T', ' ')} - {s['ended_at'][11:19]}  run {s['run']} {s['camera']} "
              f"track {s['track_id']}: frames {s['first_frame']}-{s['last_frame']} ({s['first_time_s']:.1f}-"
              f"{s['last_time_s']:.1f} s into {s['source']}), {s['clips']} clips{state}  {s['thumbnail'] or ''}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        if args.top < 1:
            raise ValueError(f"--top must be >= 1, got {args.top}")
        if args.retention_days is not None and args.retention_days <= 0:
            raise ValueError(f"--retention-days must be > 0, got {args.retention_days}")
        store = open_store(args.store)
    except (ValueError, StoreError) as exc:
        log.error("%s", exc)
        return 2
    with store:
        try:
            return _run(args, store)
        except (ValueError, FileNotFoundError, ImportError, StoreError) as exc:
            log.error("%s", exc)
            return 2


def _run(args: argparse.Namespace, store) -> int:
    out = None
    code = 0
    if args.image:
        from tracker.store.query import embed_photos, load_query_embedder, read_photo

        photos = [read_photo(p) for p in args.image]  # before the model loads: a bad path fails fast
        query = embed_photos(load_query_embedder(store.model, args.reid, args.reid_input), photos)
        folder = thumbnail_dir(args.thumbnails, store.path)
        records = [hit_record(store, hit, rank, folder) for rank, hit in enumerate(store.search(query, args.top), 1)]
        out = {"store": str(store.path), "model": store.model.name, "photos": [str(p) for p in args.image],
               "hits": records}
        if not args.json:
            print_hits(records)
    elif args.identity is not None or args.forget is not None:
        gid = args.identity if args.identity is not None else args.forget
        if store.identity(gid) is None:
            forgotten = store.forgotten_at(gid)
            log.error("identity store %s has no identity %d%s", store.path, gid,
                      f" (forgotten on {when(forgotten)})" if forgotten else "")
            return 1
        if args.identity is not None:
            out = history_record(store, gid, thumbnail_dir(args.thumbnails, store.path))
            if not args.json:
                print_history(out)
        else:
            report = store.forget(gid)
            out = {"forgotten": gid, "sightings": report.sightings, "thumbnails": report.thumbnails,
                   "leftovers_found": report.leftovers, "wal_truncated": report.wal_truncated}
            if not args.json:
                print(f"forgot identity #{gid}: {report.sightings} sightings, {report.thumbnails} thumbnails and their "
                      f"vectors erased; file vacuumed; {report.leftovers} of its vectors or thumbnails found in the "
                      "file afterwards")
            if not report.wal_truncated:
                log.warning("another process (a tracker?) is reading the store: its write-ahead log is emptied at its "
                            "next checkpoint")
            code = 1 if report.leftovers > 0 else 0
    elif args.retention_days is not None:
        report = store.apply_retention(args.retention_days)
        out = {"sightings": report.sightings, "thumbnails": report.thumbnails,
               "identities_dropped": report.identities_dropped, "identities_updated": report.identities_updated}
        if not args.json:
            print(f"dropped {report.sightings} sightings and {report.thumbnails} thumbnails older than "
                  f"{args.retention_days:g} days; {report.identities_dropped} identities left with nothing dropped, "
                  f"{report.identities_updated} recomputed")
    else:
        stats = store.stats()
        out = {**stats, "runs": [{"run": r.run_id, "started_at": iso(r.started_at), "ended_at": iso(r.ended_at),
                                  "sources": r.sources} for r in store.runs()]}
        if not args.json:
            print(f"identity store {store.path}: {stats['identities']} identities, {stats['sightings']} sightings, "
                  f"{stats['thumbnails']} thumbnails, schema {stats['schema_version']}, model {stats['model']}, "
                  f"{stats['bytes'] / 1e6:.1f} MB")
            for r in out["runs"]:
                print(f"  run {r['run']}: {(r['started_at'] or '-')[:19].replace('T', ' ')} - "
                      f"{(r['ended_at'] or 'not ended')[:19].replace('T', ' ')}  {', '.join(r['sources'].values())}")
    if args.json:
        print(json.dumps(out, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
