"""Headless outputs: MOTChallenge files per camera and ``identities.json``.

- ``DIR/<camera>.txt``: ``frame,global_id,x,y,w,h,conf,-1,-1,-1`` (frame 1 = first decoded frame,
  boxes in the source's pixels).
- ``DIR/<camera>.tracks.txt``: the same with the per-camera track id.
- ``DIR/identities.json``: global id -> cameras, tracks, first and last seen, clip count.

``<camera>.txt`` is written as the run goes (a track's rows appear once it has a global id) and
rewritten on close from ``.tracks.txt`` with each track's *final* global id: rows from before the
id arrived are filled in, and a track the revision rule moved to another identity carries the
final one in all its rows. Where two tracks of one identity were seen in the same frame (a
duplicate box tolerated by ``covisible_frames``), only the more confident box keeps the id, so an
id is on at most one box per frame. Rows of tracks that never got an id (too short, or every crop
filtered) appear only in ``.tracks.txt``. Both files are sorted by frame and id when closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from tracker.out_dir import replace_text
from tracker.types import FrameResult, GlobalIdentity


def mot_row(frame: int, object_id: int, xyxy: Iterable[float], conf: float) -> str:
    """One MOTChallenge line from an xyxy box."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return f"{frame},{object_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},-1,-1,-1\n"


def final_track_ids(identities: Iterable[GlobalIdentity]) -> dict[str, dict[int, int]]:
    """``{camera: {track id: global id}}`` for every member track of every identity.

    Needs every member listed (``Pipeline.identities()``, not a ``recent=`` snapshot).
    """
    final: dict[str, dict[int, int]] = {}
    for ident in identities:
        if ident.older is not None:
            raise ValueError(f"identity {ident.global_id} lists only its recent members ({ident.older.count} "
                             "more not listed); final ids need identities() with every member")
        for member in ident.members:
            final.setdefault(member.camera_id, {})[member.track_id] = ident.global_id
    return final


def _sort_key(line: str) -> tuple[int, int]:
    frame, object_id, _ = line.split(",", 2)
    return int(frame), int(object_id)


def relabel(track_rows: Iterable[str], final_ids: Mapping[int, int]) -> list[str]:
    """``.tracks.txt`` lines -> global-id lines (track id -> ``final_ids``), sorted; rows of tracks
    without an id are dropped, and of two rows with one id in one frame the more confident stays."""
    best: dict[tuple[int, int], tuple[float, str]] = {}  # (frame, id) -> the most confident row
    for line in track_rows:
        frame, track_id, rest = line.split(",", 2)
        gid = final_ids.get(int(track_id), 0)
        conf = float(rest.split(",")[4])
        if gid and conf > best.get((int(frame), gid), (-1.0, ""))[0]:
            best[int(frame), gid] = (conf, f"{frame},{gid},{rest}")
    return sorted((row for _, row in best.values()), key=_sort_key)


class CameraWriter:
    """Writes one camera's two MOT files.

    Args:
        out_dir: the output folder.
        camera_id: used as the file stem.
    """

    def __init__(self, out_dir: Path, camera_id: str) -> None:
        self.global_path = out_dir / f"{camera_id}.txt"
        self.tracks_path = out_dir / f"{camera_id}.tracks.txt"
        self._global = self.global_path.open("w")
        self._tracks = self.tracks_path.open("w")
        self.closed = False

    def write(self, result: FrameResult) -> None:
        """Write one frame's boxes (global rows only for tracks that have an id) and flush them, so
        a killed run leaves every processed frame on disk and a full disk is noticed at once.

        Raises:
            OSError: the write failed (a full disk).
        """
        for xyxy, conf, track_id, gid in zip(result.xyxy, result.confidence, result.track_id, result.global_id):
            self._tracks.write(mot_row(result.frame_index, int(track_id), xyxy, conf))
            if gid:
                self._global.write(mot_row(result.frame_index, int(gid), xyxy, conf))
        self._tracks.flush()
        self._global.flush()

    def close(self, final_ids: Mapping[int, int] | None = None) -> None:
        """Close; rewrite the global file with ``final_ids`` (track id -> global id); sort both.

        Without ``final_ids`` the global file keeps the ids as they were written. Both rewrites
        are atomic: if one fails (a full disk), that file keeps the rows written during the run
        and the ``OSError`` is raised. Closing twice does nothing.
        """
        if self.closed:
            return
        self.closed = True
        try:
            self._global.close()
        finally:
            self._tracks.close()
        tracks = sorted(self.tracks_path.read_text().splitlines(keepends=True), key=_sort_key)
        replace_text(self.tracks_path, "".join(tracks))
        if final_ids is None:
            rows = sorted(self.global_path.read_text().splitlines(keepends=True), key=_sort_key)
        else:
            rows = relabel(tracks, final_ids)
        replace_text(self.global_path, "".join(rows))


def identities_json(identities: Iterable[GlobalIdentity]) -> dict[str, object]:
    """The ``identities.json`` content: ``{"identities": {gid: {...}}, "count": n}``.

    Give it every member (``Pipeline.identities()``); from a snapshot of recent members only
    (``identities(recent=k)``) the tracks not listed are counted in ``"tracks_not_listed"``.
    """
    out: dict[str, object] = {}
    for ident in identities:
        out[str(ident.global_id)] = {
            "cameras": list(ident.cameras),
            "tracks": [{"camera": m.camera_id, "track_id": m.track_id, "first_frame": m.first_frame,
                        "last_frame": m.last_frame, "clips": m.clip_count} for m in ident.members],
            "first_seen": _seen(ident, first=True),
            "last_seen": _seen(ident, first=False),
            "clip_count": ident.clip_count,
        }
        if ident.older is not None:
            out[str(ident.global_id)]["tracks_not_listed"] = ident.older.count
    return {"count": len(out), "identities": out}


def _seen(ident: GlobalIdentity, first: bool) -> dict[str, object]:
    """When and where the identity was first (or last) seen: camera, frame, seconds into the source."""
    if first:
        m = ident.first_member
        return {"camera": m.camera_id, "frame": m.first_frame, "time_s": round(m.first_time_s, 3)}
    m = ident.last_member
    return {"camera": m.camera_id, "frame": m.last_frame, "time_s": round(m.last_time_s, 3)}


def write_identities(path: Path, identities: Iterable[GlobalIdentity]) -> None:
    """Write ``identities.json`` (atomically: a failed write leaves the previous file)."""
    replace_text(path, json.dumps(identities_json(identities), indent=2) + "\n")
