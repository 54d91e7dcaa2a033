"""Global identities across cameras: per-camera tracks -> one id per person.

Rules (README "Global identities" documents them for users):

1. A track gets a global id once its signature holds ``min_clips`` clips.
2. It joins the most similar identity (cosine of L2-normalised signatures) when the similarity is at
   least ``match_threshold`` AND no member of that identity was seen in the same camera in the
   same frames as the track, beyond ``covisible_frames`` of them (two people seen together in one
   camera are never one identity; the tolerance forgives a duplicate box on one person for a
   moment, after which the tracker may carry on with either track).
   Tracks waiting in the same camera are resolved together with
   ``scipy.optimize.linear_sum_assignment`` (one identity per track, most total similarity);
   cameras are resolved one after the other, so a person seen in two cameras at once can join one
   identity from both. A track that can join nothing founds a new identity, and the others are
   tried again against it.
3. Identities outlive their tracks: an identity's signature is the clip-weighted mean over all its
   member tracks, ended or not, so a person who leaves and comes back (same or other camera)
   rejoins it.
4. Revision: while a track is active, each time its signature gains clips it is re-checked. It
   moves to another identity only if that one passes ``match_threshold`` and beats its current
   identity (its signature without this track) by ``revise_margin``; a track alone in its identity
   moves as soon as another identity passes ``match_threshold``. An identity left empty is retired;
   ids are never reused. If a member comes to be seen together with another member in the same
   camera (beyond the tolerance), the later joiner leaves and is matched again.
   Boxes already reported keep the id they had (the headless MOT files are relabelled with
   the final ids when they are closed: ``tracker/outputs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracker.signatures import Signature
from tracker.types import GlobalIdentity, TrackMember

TrackKey = tuple[str, int]
_FORBIDDEN = 1e6
_RECENT_FRAMES = 256  # per camera: observations of a frame may arrive in any order within this window


@dataclass
class _Track:
    key: TrackKey
    first_frame: int
    last_frame: int
    first_time_s: float
    last_time_s: float
    signature: Signature
    global_id: int = 0
    active: bool = True
    settled: bool = False  # ended and folded into its identity: a member record only
    checked_count: int = 0  # signature clip count at the last revision check
    join_order: int = 0

    def member(self) -> TrackMember:
        return TrackMember(self.key[0], self.key[1], self.first_frame, self.last_frame,
                           self.first_time_s, self.last_time_s, self.signature.count)


@dataclass
class _Identity:
    global_id: int
    ended: Signature  # clips of ended members (their signatures no longer change)
    members: list[TrackKey] = field(default_factory=list)


class IdentityMatcher:
    """Turns per-camera track signatures into global identities.

    Args:
        feature_dim: length of the raw features.
        match_threshold: cosine similarity needed to join an identity.
        min_clips: clips before a track gets a global id.
        revise_margin: see module docstring, rule 4.
        covisible_frames: frames two tracks of one camera may be seen together and still be one
            identity (module docstring, rule 2).
    """

    def __init__(self, feature_dim: int, match_threshold: float = 0.75, min_clips: int = 2,
                 revise_margin: float = 0.05, covisible_frames: int = 0) -> None:
        if min_clips < 1:
            raise ValueError(f"min_clips must be >= 1, got {min_clips}")
        if covisible_frames < 0:
            raise ValueError(f"covisible_frames must be >= 0, got {covisible_frames}")
        self.covisible_frames = covisible_frames
        # frames each pair of tracks was seen together; the tracks seen in each camera's recent frames
        self._together: dict[TrackKey, dict[TrackKey, int]] = {}
        self._recent: dict[str, dict[int, list[TrackKey]]] = {}
        self.feature_dim = feature_dim
        self.match_threshold = match_threshold
        self.min_clips = min_clips
        self.revise_margin = revise_margin
        self._tracks: dict[TrackKey, _Track] = {}
        self._identities: dict[int, _Identity] = {}
        self._next_global_id = 1
        self._joins = 0

    # -- feeding -------------------------------------------------------------------------------
    def observe(self, camera_id: str, track_id: int, frame_index: int, time_s: float = 0.0) -> None:
        """The track was seen in this frame (extends its lifetime)."""
        key = (camera_id, int(track_id))
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(key, frame_index, frame_index, time_s, time_s,
                                               Signature.empty(self.feature_dim))
        elif track.settled:
            return  # ended and reported; ids are not reused by the per-camera trackers
        self._seen_together(key, frame_index)
        track.last_frame = max(track.last_frame, frame_index)
        track.last_time_s = max(track.last_time_s, time_s)
        track.active = True

    def add_feature(self, camera_id: str, track_id: int, feature: np.ndarray) -> None:
        """Fold one clip's ``(D,)`` raw feature into the track's signature."""
        track = self._tracks.get((camera_id, int(track_id)))
        if track is None:
            raise KeyError(f"track {track_id} of camera {camera_id!r} was never observed")
        if track.settled:
            return
        track.signature = track.signature.add(feature)

    def end_track(self, camera_id: str, track_id: int) -> None:
        """The track is over; ``resolve`` settles it and reports its final id."""
        track = self._tracks.get((camera_id, int(track_id)))
        if track is not None:
            track.active = False

    # -- queries -------------------------------------------------------------------------------
    def global_id(self, camera_id: str, track_id: int) -> int:
        """The track's global id, 0 while it has none."""
        track = self._tracks.get((camera_id, int(track_id)))
        return 0 if track is None else track.global_id

    def clip_counts(self) -> dict[TrackKey, int]:
        """Clips in each live track's signature."""
        return {k: t.signature.count for k, t in self._tracks.items() if not t.settled}

    def identities(self) -> list[GlobalIdentity]:
        """Every identity with its members (no thumbnails), by global id."""
        out = []
        for gid in sorted(self._identities):
            ident = self._identities[gid]
            members = tuple(self._tracks[k].member() for k in ident.members)
            out.append(GlobalIdentity(gid, members, sum(m.clip_count for m in members)))
        return out

    def identity_signature(self, global_id: int, exclude: TrackKey | None = None) -> Signature:
        """Clip-weighted mean over the identity's members (optionally without one track)."""
        ident = self._identities[global_id]
        signature = ident.ended
        for key in ident.members:
            track = self._tracks[key]
            if not track.settled and key != exclude:
                signature = signature.combine(track.signature)
        return signature

    # -- resolving -----------------------------------------------------------------------------
    def resolve(self) -> dict[TrackKey, int]:
        """Assign, revise and settle; returns ``{ended track: its final global id (0: none)}``."""
        for track in list(self._tracks.values()):
            if track.global_id and not track.settled and self._conflicts(track):
                self._leave(track)
        self._revise()
        pending = [t for t in self._tracks.values() if not t.global_id and t.signature.count >= self.min_clips]
        self._assign(pending)
        return self._settle_ended()

    def _conflicts(self, track: _Track) -> bool:
        """A member that joined earlier, or has ended, overlaps this one in the same camera."""
        ident = self._identities[track.global_id]
        for key in ident.members:
            other = self._tracks[key]
            if key != track.key and self._covisible(track.key, key) and (other.settled or other.join_order < track.join_order):
                return True
        return False

    def _seen_together(self, key: TrackKey, frame_index: int) -> None:
        """Count the frame for every pair of this camera's tracks seen in it."""
        frames = self._recent.setdefault(key[0], {})
        seen = frames.setdefault(frame_index, [])
        if key in seen:
            return
        for other in seen:
            count = self._together.setdefault(key, {}).get(other, 0) + 1
            self._together[key][other] = self._together.setdefault(other, {})[key] = count
        seen.append(key)
        while len(frames) > _RECENT_FRAMES:  # frames arrive in order: the first inserted is the oldest
            del frames[next(iter(frames))]

    def _covisible(self, a: TrackKey, b: TrackKey) -> bool:
        """Seen together in one camera in more than ``covisible_frames`` frames."""
        return self._together.get(a, {}).get(b, 0) > self.covisible_frames

    def _allowed(self, track: _Track, global_id: int) -> bool:
        ident = self._identities[global_id]
        return not any(self._covisible(track.key, k) for k in ident.members if k != track.key)

    def _similarities(self, track: _Track, global_ids: list[int]) -> np.ndarray:
        """Cosine similarity to each identity (without the track itself); -inf where not allowed."""
        query = track.signature.normalized()
        sims = np.full(len(global_ids), -np.inf, np.float32)
        for j, gid in enumerate(global_ids):
            if self._allowed(track, gid):
                signature = self.identity_signature(gid, exclude=track.key)
                if signature.count:
                    sims[j] = float(query @ signature.normalized())
        return sims

    def _assign(self, pending: list[_Track]) -> None:
        pending = sorted(pending, key=lambda t: (t.key[0], t.first_frame, t.key[1]))
        while pending:
            joined: list[_Track] = []
            for camera in dict.fromkeys(t.key[0] for t in pending):
                joined += self._assign_camera([t for t in pending if t.key[0] == camera])
            pending = [t for t in pending if not t.global_id]
            if not joined and pending:
                founder = max(pending, key=lambda t: (t.signature.count, -t.first_frame))
                self._join(founder, self._new_identity())
                pending.remove(founder)

    def _assign_camera(self, tracks: list[_Track]) -> list[_Track]:
        """Jointly assign one camera's waiting tracks to existing identities (linear_sum_assignment)."""
        global_ids = list(self._identities)
        if not global_ids:
            return []
        sims = np.stack([self._similarities(t, global_ids) for t in tracks])
        cost = np.where(sims >= self.match_threshold, -sims, _FORBIDDEN)
        rows, cols = linear_sum_assignment(cost)
        joined = []
        for r, c in zip(rows, cols):
            if cost[r, c] < _FORBIDDEN:
                self._join(tracks[r], global_ids[c])
                joined.append(tracks[r])
        return joined

    def _revise(self) -> None:
        for track in self._tracks.values():
            if not (track.active and track.global_id and track.signature.count > track.checked_count):
                continue
            track.checked_count = track.signature.count
            current = track.global_id
            others = [g for g in self._identities if g != current]
            if not others:
                continue
            sims = self._similarities(track, others)
            best = int(np.argmax(sims))
            if sims[best] < self.match_threshold:
                continue
            alone = self._identities[current].members == [track.key]
            if not alone:
                here = self._similarities(track, [current])[0]
                if sims[best] < here + self.revise_margin:
                    continue
            self._leave(track)
            self._join(track, others[best])

    # -- bookkeeping ---------------------------------------------------------------------------
    def _new_identity(self) -> int:
        gid = self._next_global_id
        self._next_global_id += 1
        self._identities[gid] = _Identity(gid, Signature.empty(self.feature_dim))
        return gid

    def _join(self, track: _Track, global_id: int) -> None:
        self._joins += 1
        track.global_id, track.join_order, track.checked_count = global_id, self._joins, track.signature.count
        self._identities[global_id].members.append(track.key)

    def _leave(self, track: _Track) -> None:
        ident = self._identities[track.global_id]
        ident.members.remove(track.key)
        track.global_id = 0
        if not ident.members:
            del self._identities[ident.global_id]  # retired; its id is never reused

    def _settle_ended(self) -> dict[TrackKey, int]:
        ended = {}
        for key, track in list(self._tracks.items()):
            if track.active or track.settled:
                continue
            ended[key] = track.global_id
            if track.global_id:
                ident = self._identities[track.global_id]
                ident.ended = ident.ended.combine(track.signature)
                track.settled = True  # its signature now lives in ident.ended
                track.signature = Signature(np.zeros(0), track.signature.count)  # keep the count only
            else:
                del self._tracks[key]  # never identified: nothing to keep
                for other in self._together.pop(key, {}):
                    self._together.get(other, {}).pop(key, None)
        return ended
