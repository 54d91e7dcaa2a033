"""Global identities across cameras: per-camera tracks -> one id per person (open set).

Rules (README "Global identities" documents them for users, with the figures behind each setting):

1. A track gets a global id once its signature holds ``min_clips`` clips.
2. It joins the most similar identity (cosine of L2-normalised signatures) when the similarity is at
   least the identity's threshold AND no member of that identity was seen in the same camera in
   the same frames as the track, beyond ``covisible_frames`` of them (two people seen together in
   one camera are never one identity; the tolerance forgives a duplicate box on one person for a
   moment). The threshold is ``match_threshold``, chosen on a stream of hundreds of real people so
   that it holds as identities accumulate, except for an identity one of whose tracks was lost in
   the same camera at most ``link_seconds`` before the new track appeared, close to where it
   appeared (within half a body height plus one body height per second of the gap): a person the
   per-camera tracker lost and found again. For such an identity the threshold is lowered by
   ``link_relax``. Time and place make it likely; appearance must still agree.
   Tracks waiting in the same camera are resolved together with
   ``scipy.optimize.linear_sum_assignment`` (one identity per track, most total similarity above
   the thresholds); cameras are resolved one after the other, so a person seen in two cameras at
   once can join one identity from both. A track that can join nothing founds a new identity, and
   the others are tried again against it.
3. Identities outlive their tracks: an identity's signature is the clip-weighted mean over all its
   member tracks, ended or not, so a person who leaves and comes back (same or other camera)
   rejoins it. The signatures live in one matrix (``tracker.gallery``): a track is compared with
   every identity in one product.
4. Revision: while a track is active, each time its signature gains clips it is re-checked. It
   moves to another identity only if that one passes its threshold and beats its current
   identity (its signature without this track) by ``revise_margin``; a track alone in its identity
   moves as soon as another identity passes its threshold. An identity left empty is retired;
   ids are never reused. If a member comes to be seen together with another member in the same
   camera (beyond the tolerance), the later joiner leaves and is matched again.
   Boxes already reported keep the id they had (the headless MOT files are relabelled with
   the final ids when they are closed: ``tracker/outputs.py``).

Memory stays flat over long runs: an ended member track is folded into its identity's gallery
row at once, and its record is archived (``tracker.archive``: a fixed-size row, spilled to a
scratch file) as soon as nothing live can refer to it: it has left the recent-frames window of its
camera, no live track was seen together with it, and no live track counts it as a lost
predecessor. An identity keeps its live and not yet archived members, a summary of the archived
ones (count, clips, cameras, first and last seen) and its last ``recent_members`` archived records;
``identities()`` merges the archive back in join order, so the output is what it would be if
nothing had been archived.

Identities of earlier runs (``seed``, from ``tracker.store``) enter as identities without member
tracks whose gallery row holds their stored signature: rule 2 lets a returning person's track join
one exactly as it would rejoin an identity whose members have all ended; such an identity is never
retired, and new ids continue after the highest id ever given.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracker.archive import MemberArchive
from tracker.config import DEFAULT_MATCH_THRESHOLD
from tracker.gallery import IdentityGallery
from tracker.signatures import Signature
from tracker.types import GlobalIdentity, MemberSummary, TrackMember

TrackKey = tuple[str, int]
_FORBIDDEN = 1e6
_RECENT_FRAMES = 256  # per camera: observations of a frame may arrive in any order within this window
# A lost person walks about one body height per second; boxes jitter by about half a height.
_LINK_HEIGHTS_PER_S = 1.0
_LINK_HEIGHTS_BASE = 0.5
RECENT_MEMBERS = 8  # archived member records an identity keeps for snapshots (identities(recent=...))


@dataclass
class _Track:
    key: TrackKey
    first_frame: int
    last_frame: int
    first_time_s: float
    last_time_s: float
    signature: Signature
    first_box: tuple[float, float, float] | None = None  # centre x, centre y, height (pixels)
    last_box: tuple[float, float, float] | None = None
    predecessors: list[TrackKey] | None = None  # tracks of its camera lost shortly before, close by
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
    members: list[TrackKey] = field(default_factory=list)  # live and not yet archived
    archived: int = 0  # members archived (tracker.archive)
    archived_clips: int = 0
    cameras: dict[str, None] = field(default_factory=dict)  # of the archived members, in order
    first: TrackMember | None = None  # the archived member seen first, and last
    last: TrackMember | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_MEMBERS))  # (join order, member)
    stored: bool = False  # seen in an earlier run (``seed``): its gallery row holds those clips; never retired

    def archive(self, join_order: int, member: TrackMember) -> None:
        """Fold an archived member into the summary."""
        self.archived += 1
        self.archived_clips += member.clip_count
        self.cameras.setdefault(member.camera_id)
        if self.first is None or (member.first_time_s, member.first_frame) < (self.first.first_time_s,
                                                                              self.first.first_frame):
            self.first = member
        if self.last is None or (member.last_time_s, member.last_frame) > (self.last.last_time_s,
                                                                           self.last.last_frame):
            self.last = member
        self.recent.append((join_order, member))


def _box(xyxy) -> tuple[float, float, float] | None:
    if xyxy is None:
        return None
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return ((x1 + x2) / 2, (y1 + y2) / 2, max(y2 - y1, 1.0))


class IdentityMatcher:
    """Turns per-camera track signatures into global identities.

    Args:
        feature_dim: length of the raw features.
        match_threshold: cosine similarity needed to join an identity.
        min_clips: clips before a track gets a global id.
        revise_margin: see module docstring, rule 4.
        covisible_frames: frames two tracks of one camera may be seen together and still be one
            identity (module docstring, rule 2).
        link_seconds: how long after a track was lost a new track nearby in the same camera is
            taken as its likely continuation (0: never; module docstring, rule 2).
        link_relax: how much lower the threshold is for such a continuation.
    """

    def __init__(self, feature_dim: int, match_threshold: float = DEFAULT_MATCH_THRESHOLD, min_clips: int = 2,
                 revise_margin: float = 0.05, covisible_frames: int = 0, link_seconds: float = 0.0,
                 link_relax: float = 0.0) -> None:
        if min_clips < 1:
            raise ValueError(f"min_clips must be >= 1, got {min_clips}")
        if covisible_frames < 0:
            raise ValueError(f"covisible_frames must be >= 0, got {covisible_frames}")
        if link_seconds < 0 or link_relax < 0:
            raise ValueError(f"link_seconds and link_relax must be >= 0, got {link_seconds}, {link_relax}")
        self.covisible_frames = covisible_frames
        # frames each pair of tracks was seen together; the tracks seen in each camera's recent frames
        self._together: dict[TrackKey, dict[TrackKey, int]] = {}
        self._recent: dict[str, dict[int, list[TrackKey]]] = {}
        self.feature_dim = feature_dim
        self.match_threshold = match_threshold
        self.min_clips = min_clips
        self.revise_margin = revise_margin
        self.link_seconds = link_seconds
        self.link_relax = link_relax
        self._tracks: dict[TrackKey, _Track] = {}
        self._identities: dict[int, _Identity] = {}
        self._gallery = IdentityGallery(feature_dim)
        self._live: dict[TrackKey, _Track] = {}  # tracks not settled yet
        self._live_signatures: dict[int, list[Signature]] | None = None  # cached, see _live_by_identity()
        self._next_global_id = 1
        self._joins = 0
        self._in_recent: dict[TrackKey, int] = {}  # frames of the recent window each track is in
        self._settled: dict[TrackKey, None] = {}  # ended members not archived yet
        self._archive = MemberArchive()
        # called as ``on_settle(global_id, member, signature)`` when an identified track ends, before
        # its signature is folded away (``tracker.store`` records it)
        self.on_settle: Callable[[int, TrackMember, Signature], None] | None = None

    # -- persistence (tracker.store) -----------------------------------------------------------
    def seed(self, identities: Iterable[tuple[int, Signature]], next_global_id: int = 1) -> None:
        """Start from identities of earlier runs: each becomes an identity without member tracks
        whose gallery row holds its stored signature, so a returning person's track joins it by
        the same rule as any re-entry (rule 2). New ids continue from ``next_global_id`` (and above
        every seeded id); a seeded identity is never retired, and a track joining it is not alone
        in it (rule 4).

        Raises:
            ValueError: called after tracks arrived, a non-positive or repeated id, or a signature
                of the wrong length.
        """
        if self._tracks or self._identities:
            raise ValueError("seed() must come before the first track and only once")
        top = 0
        for gid, signature in identities:
            gid = int(gid)
            if gid <= 0 or gid in self._identities:
                raise ValueError(f"seeded global ids must be positive and distinct, got {gid}")
            if signature.mean.shape != (self.feature_dim,):
                raise ValueError(f"identity {gid}: signature must have shape ({self.feature_dim},), "
                                 f"got {signature.mean.shape}")
            self._identities[gid] = _Identity(gid, stored=True)
            self._gallery.add(gid)
            self._gallery.fold(gid, signature)
            top = max(top, gid)
        self._next_global_id = max(int(next_global_id), top + 1, 1)

    @property
    def next_global_id(self) -> int:
        """The id the next new identity will get."""
        return self._next_global_id

    def live_members(self) -> list[tuple[int, TrackMember, Signature]]:
        """``(global id, member, signature)`` of every track still being tracked that has a global id."""
        return [(t.global_id, t.member(), t.signature) for t in self._live.values() if t.global_id]

    # -- feeding -------------------------------------------------------------------------------
    def observe(self, camera_id: str, track_id: int, frame_index: int, time_s: float = 0.0,
                xyxy=None) -> None:
        """The track was seen in this frame (extends its lifetime); ``xyxy`` is its box, if known."""
        key = (camera_id, int(track_id))
        track = self._tracks.get(key)
        box = _box(xyxy)
        if track is None:
            if self._archive.global_id(*key) is not None:
                return  # ended and archived
            track = self._tracks[key] = self._live[key] = _Track(key, frame_index, frame_index, time_s, time_s,
                                                                 Signature.empty(self.feature_dim), box, box)
        elif track.settled:
            return  # ended and reported; ids are not reused by the per-camera trackers
        self._seen_together(key, frame_index)
        if frame_index >= track.last_frame:
            track.last_box = box or track.last_box
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
        if track.global_id:
            self._live_signatures = None

    def end_track(self, camera_id: str, track_id: int) -> None:
        """The track is over; ``resolve`` settles it and reports its final id."""
        track = self._tracks.get((camera_id, int(track_id)))
        if track is not None:
            track.active = False

    # -- queries -------------------------------------------------------------------------------
    def global_id(self, camera_id: str, track_id: int) -> int:
        """The track's global id, 0 while it has none."""
        track = self._tracks.get((camera_id, int(track_id)))
        if track is None:
            return self._archive.global_id(camera_id, int(track_id)) or 0
        return track.global_id

    def clip_counts(self) -> dict[TrackKey, int]:
        """Clips in each live track's signature."""
        return {k: t.signature.count for k, t in self._live.items()}

    def bookkeeping(self) -> dict[str, int]:
        """Records held, for soak tests: tracks (live and ended), co-visibility pairs, recent-frame
        entries, identities and the member entries of their lists."""
        return {"matcher_tracks": len(self._tracks), "matcher_live": len(self._live),
                "covisible_pairs": sum(len(v) for v in self._together.values()),
                "recent_entries": sum(len(keys) for frames in self._recent.values() for keys in frames.values()),
                "identities": len(self._identities),
                "identity_members": sum(len(i.members) + len(i.recent) for i in self._identities.values()),
                "archived_tracks": len(self._archive), "archive_rows_in_memory": self._archive.rows_in_memory}

    def identities(self, recent: int | None = None) -> list[GlobalIdentity]:
        """Every identity with its members (no thumbnails), by global id.

        Args:
            recent: None lists every member track (the archive is read back: what
                ``identities.json`` needs); a number lists at most that many of the latest archived
                members besides the unarchived ones and summarises the others in
                ``GlobalIdentity.older`` (cheap: for a viewer refreshing often).
        """
        archived = self._archive.by_identity() if recent is None else {}
        out = []
        for gid in sorted(self._identities):
            ident = self._identities[gid]
            if not ident.members and not ident.archived:
                continue  # seen only in earlier runs (``seed``)
            current = [(self._tracks[k].join_order, self._tracks[k].member()) for k in ident.members]
            if recent is None:
                listed = sorted(archived.get(gid, []) + current, key=lambda pair: pair[0])
                members = tuple(m for _, m in listed)
                out.append(GlobalIdentity(gid, members, sum(m.clip_count for m in members)))
                continue
            shown = list(ident.recent)[max(len(ident.recent) - recent, 0):] if recent > 0 else []
            members = tuple(m for _, m in sorted(shown + current, key=lambda pair: pair[0]))
            older = None
            if ident.archived > len(shown):
                clips = ident.archived_clips - sum(m.clip_count for _, m in shown)
                older = MemberSummary(ident.archived - len(shown), clips, tuple(ident.cameras),
                                      ident.first, ident.last)
            out.append(GlobalIdentity(gid, members, ident.archived_clips + sum(m.clip_count for _, m in current),
                                      older=older))
        return out

    def identity_signature(self, global_id: int, exclude: TrackKey | None = None) -> Signature:
        """Clip-weighted mean over the identity's members (optionally without one track)."""
        signature = self._gallery.ended(global_id)
        for key in self._identities[global_id].members:
            track = self._tracks[key]
            if not track.settled and key != exclude:
                signature = signature.combine(track.signature)
        return signature

    # -- resolving -----------------------------------------------------------------------------
    def resolve(self) -> dict[TrackKey, int]:
        """Assign, revise and settle; returns ``{ended track: its final global id (0: none)}``."""
        for track in list(self._live.values()):
            if track.global_id and self._conflicts(track):
                self._leave(track)
        self._revise()
        pending = [t for t in self._live.values() if not t.global_id and t.signature.count >= self.min_clips]
        self._assign(pending)
        ended = self._settle_ended()
        self._archive_unreferenced()
        return ended

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
        self._in_recent[key] = self._in_recent.get(key, 0) + 1
        while len(frames) > _RECENT_FRAMES:  # frames arrive in order: the first inserted is the oldest
            for old in frames.pop(next(iter(frames))):
                left = self._in_recent[old] - 1
                if left:
                    self._in_recent[old] = left
                else:
                    del self._in_recent[old]

    def _covisible(self, a: TrackKey, b: TrackKey) -> bool:
        """Seen together in one camera in more than ``covisible_frames`` frames."""
        return self._together.get(a, {}).get(b, 0) > self.covisible_frames

    def similarities(self, signature: Signature) -> dict[int, float]:
        """Cosine similarity of a signature to every identity (all its members): ``{global id: sim}``."""
        gids, _ = self._gallery.order()
        sims = self._gallery.similarities(signature.normalized(), self._live_by_identity())
        return dict(zip(gids.tolist(), sims.tolist()))

    def _live_by_identity(self) -> dict[int, list[Signature]]:
        """Signatures of the members still being tracked, per identity (rebuilt only after a change)."""
        if self._live_signatures is None:
            self._live_signatures = {}
            for track in self._live.values():
                if track.global_id:
                    self._live_signatures.setdefault(track.global_id, []).append(track.signature)
        return self._live_signatures

    def _scores(self, track: _Track) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(global ids, cosine similarity to each (without the track itself; -inf where not
        allowed), each identity's threshold for this track)``."""
        gids, index = self._gallery.order()
        query = track.signature.normalized()
        sims = self._gallery.similarities(query, self._live_by_identity())
        if track.global_id:  # its own identity without it
            own = self.identity_signature(track.global_id, exclude=track.key)
            sims[index[track.global_id]] = float(query @ own.normalized()) if own.count else -np.inf
        for other, frames in self._together.get(track.key, {}).items():
            gid = self._tracks[other].global_id if other in self._tracks else 0
            if gid and frames > self.covisible_frames:
                sims[index[gid]] = -np.inf
        thresholds = np.full(len(gids), self.match_threshold, np.float32)
        for gid in self._linked(track):
            thresholds[index[gid]] -= self.link_relax
        return gids, sims, thresholds

    def _linked(self, track: _Track) -> set[int]:
        """Identities with a track lost shortly before ``track`` appeared, near where it appeared."""
        if not (self.link_seconds and self.link_relax) or track.first_box is None:
            return set()
        x, y, h = track.first_box
        if track.predecessors is None:  # found once: tracks lost before this one appeared stay so
            track.predecessors = []
            recent = {k for keys in self._recent.get(track.key[0], {}).values() for k in keys}
            for key in recent:
                other = self._tracks.get(key)
                if other is None or other.last_box is None:
                    continue
                gap = track.first_time_s - other.last_time_s
                if not 0 < gap <= self.link_seconds:
                    continue
                ox, oy, oh = other.last_box
                reach = (h + oh) / 2 * (_LINK_HEIGHTS_BASE + _LINK_HEIGHTS_PER_S * gap)
                if np.hypot(x - ox, y - oy) <= reach:
                    track.predecessors.append(key)
        return {self._tracks[k].global_id for k in track.predecessors if k in self._tracks} - {0}

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
        if not self._identities:
            return []
        scored = [self._scores(t) for t in tracks]
        gids = scored[0][0]
        margin = np.stack([sims - thresholds for _, sims, thresholds in scored])
        cost = np.where(margin >= 0, -margin, _FORBIDDEN)
        rows, cols = linear_sum_assignment(cost)
        joined = []
        for r, c in zip(rows, cols):
            if cost[r, c] < _FORBIDDEN:
                self._join(tracks[r], int(gids[c]))
                joined.append(tracks[r])
        return joined

    def _revise(self) -> None:
        for track in list(self._live.values()):
            if not (track.active and track.global_id and track.signature.count > track.checked_count):
                continue
            track.checked_count = track.signature.count
            current = track.global_id
            gids, sims, thresholds = self._scores(track)
            here = int(np.flatnonzero(gids == current)[0])
            passing = np.where((sims >= thresholds) & (gids != current), sims, -np.inf)
            best = int(np.argmax(passing)) if len(passing) else 0
            if not len(passing) or passing[best] == -np.inf:
                continue
            ident = self._identities[current]
            alone = ident.members == [track.key] and not ident.archived and not ident.stored
            if not alone and sims[best] < sims[here] + self.revise_margin:
                continue
            self._leave(track)
            self._join(track, int(gids[best]))

    # -- bookkeeping ---------------------------------------------------------------------------
    def _new_identity(self) -> int:
        gid = self._next_global_id
        self._next_global_id += 1
        self._identities[gid] = _Identity(gid)
        self._gallery.add(gid)
        return gid

    def _join(self, track: _Track, global_id: int) -> None:
        self._joins += 1
        track.global_id, track.join_order, track.checked_count = global_id, self._joins, track.signature.count
        self._identities[global_id].members.append(track.key)
        self._live_signatures = None

    def _leave(self, track: _Track) -> None:
        ident = self._identities[track.global_id]
        ident.members.remove(track.key)
        track.global_id = 0
        self._live_signatures = None
        if not ident.members and not ident.archived and not ident.stored:
            del self._identities[ident.global_id]  # retired; its id is never reused
            self._gallery.remove(ident.global_id)

    def _settle_ended(self) -> dict[TrackKey, int]:
        ended = {}
        for key, track in list(self._live.items()):
            if track.active:
                continue
            ended[key] = track.global_id
            del self._live[key]
            if track.global_id:
                self._live_signatures = None
                if self.on_settle is not None:
                    self.on_settle(track.global_id, track.member(), track.signature)
                self._gallery.fold(track.global_id, track.signature)
                track.settled = True  # its signature now lives in the gallery
                track.signature = Signature(np.zeros(0), track.signature.count)  # keep the count only
                self._settled[key] = None
            else:
                del self._tracks[key]  # never identified: nothing to keep
                self._forget_pairs(key)
        return ended

    def _archive_unreferenced(self) -> None:
        """Archive the settled members nothing live can refer to (module docstring, last part)."""
        ready = [key for key in self._settled if key not in self._in_recent
                 and not any(other in self._live for other in self._together.get(key, ()))]
        if not ready:
            return
        predecessors = {k for t in self._live.values() for k in (t.predecessors or ())}
        for key in ready:
            if key in predecessors:
                continue
            track = self._tracks.pop(key)
            del self._settled[key]
            member = track.member()
            ident = self._identities[track.global_id]
            ident.members.remove(key)
            ident.archive(track.join_order, member)
            self._archive.add(member, track.global_id, track.join_order)
            self._forget_pairs(key)  # its partners have all ended too

    def _forget_pairs(self, key: TrackKey) -> None:
        """Drop the track's co-visibility counts, both ways."""
        for other in self._together.pop(key, {}):
            partners = self._together.get(other)
            if partners is not None:
                partners.pop(key, None)
                if not partners:
                    del self._together[other]


def matcher_from_config(config, feature_dim: int) -> IdentityMatcher:
    """The matcher a ``TrackerConfig`` describes."""
    return IdentityMatcher(feature_dim, config.match_threshold, config.min_clips, config.revise_margin,
                           config.covisible_frames, config.link_seconds, config.link_relax)
