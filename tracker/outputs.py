"""Headless outputs: MOTChallenge files per camera and ``identities.json``.

- ``DIR/<camera>.txt``: ``frame,global_id,x,y,w,h,conf,-1,-1,-1`` (frame 1 = first decoded frame,
  boxes in the source's pixels).
- ``DIR/<camera>.tracks.txt``: the same with the per-camera track id.
- ``DIR/identities.json``: global id -> cameras, tracks, first and last seen, clip count.

A track gets its global id only after ``min_clips`` clips; its earlier rows are held and written
with that id once it arrives (so the global file has no unlabelled rows). Rows of a track that
ends without a global id (too short, or every crop filtered) appear only in ``.tracks.txt``.
Files are sorted by frame and id when closed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tracker.types import FrameResult, GlobalIdentity

_MAX_HELD_ROWS = 100_000  # per camera; beyond this, held rows of unidentified tracks are dropped


def mot_row(frame: int, object_id: int, xyxy: Iterable[float], conf: float) -> str:
    """One MOTChallenge line from an xyxy box."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return f"{frame},{object_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},-1,-1,-1\n"


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
        self._held: dict[int, list[tuple[int, tuple[float, ...], float]]] = {}
        self._held_rows = 0

    def write(self, result: FrameResult) -> None:
        """Write one frame's boxes; release held rows of tracks that got their global id."""
        for xyxy, conf, track_id, gid in zip(result.xyxy, result.confidence, result.track_id, result.global_id):
            track_id, gid = int(track_id), int(gid)
            self._tracks.write(mot_row(result.frame_index, track_id, xyxy, conf))
            if gid:
                self._release(track_id, gid)
                self._global.write(mot_row(result.frame_index, gid, xyxy, conf))
            elif self._held_rows < _MAX_HELD_ROWS:
                self._held.setdefault(track_id, []).append((result.frame_index, tuple(xyxy), float(conf)))
                self._held_rows += 1
        self.tracks_ended(result.ended_tracks)

    def tracks_ended(self, final_ids: dict[int, int]) -> None:
        """Tracks that are over: write held rows under their final id, or drop them (no id)."""
        for track_id, gid in final_ids.items():
            if gid:
                self._release(track_id, gid)
            else:
                self._held_rows -= len(self._held.pop(track_id, ()))

    def _release(self, track_id: int, gid: int) -> None:
        rows = self._held.pop(track_id, None)
        if rows:
            self._held_rows -= len(rows)
            for frame, xyxy, conf in rows:
                self._global.write(mot_row(frame, gid, xyxy, conf))

    def close(self) -> None:
        """Close and sort both files by frame, then id."""
        self._global.close()
        self._tracks.close()
        for path in (self.global_path, self.tracks_path):
            lines = path.read_text().splitlines(keepends=True)
            lines.sort(key=lambda line: tuple(int(v) for v in line.split(",", 2)[:2]))
            path.write_text("".join(lines))


def identities_json(identities: Iterable[GlobalIdentity]) -> dict[str, object]:
    """The ``identities.json`` content: ``{"identities": {gid: {...}}, "count": n}``."""
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
    return {"count": len(out), "identities": out}


def _seen(ident: GlobalIdentity, first: bool) -> dict[str, object]:
    """When and where the identity was first (or last) seen: camera, frame, seconds into the source."""
    if first:
        m = min(ident.members, key=lambda m: (m.first_time_s, m.first_frame))
        return {"camera": m.camera_id, "frame": m.first_frame, "time_s": round(m.first_time_s, 3)}
    m = max(ident.members, key=lambda m: (m.last_time_s, m.last_frame))
    return {"camera": m.camera_id, "frame": m.last_frame, "time_s": round(m.last_time_s, 3)}


def write_identities(path: Path, identities: Iterable[GlobalIdentity]) -> None:
    """Write ``identities.json``."""
    path.write_text(json.dumps(identities_json(identities), indent=2) + "\n")
