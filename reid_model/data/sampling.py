"""Clip sampling: restricted random training clips, the P x K identity sampler, AAS test-time clips.

Training (paper Sec. 4.1): each tracklet gives an ``seq_len``-frame clip by restricted random
sampling, and a batch holds P identities x K tracklets (8 x 4 = 32). Test time (AAS, Sec. 3.2,
Eq. 5): a sequence becomes its non-overlapping ``seq_len``-frame clips, whose features are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from reid_model.data.mars import Tracklet
from reid_model.data.transforms import ClipAugment, read_frames

CLIP_MODES = ("all", "restricted")


def read_tracklet_frames(tracklet, indices: Sequence[int], height: int, width: int) -> np.ndarray:
    """Frames ``indices`` of a tracklet as uint8 RGB ``(len(indices), height, width, 3)``.

    A MARS ``Tracklet`` has one file per frame (``paths``); a tracklet with a ``read_frames``
    method (``mars_dap``'s ``StripTracklet``: all frames in one strip image) decodes itself.
    """
    reader = getattr(tracklet, "read_frames", None)
    if reader is not None:
        return reader(indices, height, width)
    return read_frames([tracklet.paths[j] for j in indices], height, width)


def _check_frames(num_frames: int, seq_len: int) -> None:
    if num_frames < 1 or seq_len < 1:
        raise ValueError(f"need num_frames >= 1 and seq_len >= 1, got num_frames={num_frames}, seq_len={seq_len}")


def _spread(num_frames: int, seq_len: int) -> np.ndarray:
    """``seq_len`` sorted indices into ``num_frames`` frames, each frame used about equally often."""
    return (np.arange(seq_len) * num_frames) // seq_len


def restricted_random_indices(num_frames: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """Restricted random sampling: ``seq_len`` equal chunks, one random frame from each.

    Chunk i is ``[floor(i*n/seq_len), floor((i+1)*n/seq_len))``. When ``num_frames < seq_len``
    the chunks hold one frame each and frames repeat (``n=2, seq_len=4 -> [0, 0, 1, 1]``).

    Returns:
        ``(seq_len,)`` int64 frame indices in ascending order.
    """
    _check_frames(num_frames, seq_len)
    low = _spread(num_frames, seq_len)
    high = np.maximum((np.arange(1, seq_len + 1) * num_frames) // seq_len, low + 1)
    return rng.integers(low, high).astype(np.int64)


def _check_clips(clips: int | str) -> str:
    """``"all"``/``"restricted"`` for those modes, ``"k"`` for a valid count; ValueError otherwise."""
    if isinstance(clips, str) and clips in CLIP_MODES:
        return clips
    if isinstance(clips, (int, np.integer)) and not isinstance(clips, bool) and clips >= 1:
        return "k"
    raise ValueError(f"clips must be a positive int or one of {', '.join(CLIP_MODES)}, got {clips!r}")


def test_clip_indices(
    num_frames: int, seq_len: int = 4, clips: int | str = "all", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Test-time clips of a sequence (AAS).

    The sequence is cut into ``ceil(n / seq_len)`` non-overlapping consecutive clips; the last,
    partial one is completed by repeating its frames in order (``[8, 9] -> [8, 8, 9, 9]``).

    Args:
        num_frames: frames in the sequence.
        seq_len: frames per clip.
        clips: ``"all"`` (every clip, in order); ``k`` (k clips spread evenly over the sequence,
            the centres of k equal parts; all of them if fewer exist); ``1`` (one random clip, the
            single-clip baseline); ``"restricted"`` (one clip by restricted random sampling over
            the whole sequence, as in training: the paper's baseline read literally).
        rng: randomness for ``clips=1`` and ``"restricted"``; None means ``default_rng(0)``.

    Returns:
        ``(C, seq_len)`` int64 frame indices.
    """
    _check_frames(num_frames, seq_len)
    mode = _check_clips(clips)
    rng = rng if rng is not None else np.random.default_rng(0)
    if mode == "restricted":
        return restricted_random_indices(num_frames, seq_len, rng)[None, :]
    starts = np.arange(0, num_frames, seq_len)
    lengths = np.minimum(seq_len, num_frames - starts)
    every = starts[:, None] + (np.arange(seq_len)[None, :] * lengths[:, None]) // seq_len
    count = len(every)
    if mode == "all" or clips >= count:
        return every.astype(np.int64)
    if clips == 1:
        return every[[rng.integers(count)]].astype(np.int64)
    chosen = ((np.arange(clips) + 0.5) * count / clips).astype(np.int64)
    return every[chosen].astype(np.int64)


test_clip_indices.__test__ = False  # not a pytest test when imported into a test module


EPOCH_SIZES = ("tracklets", "identities")


class IdentitySampler(Sampler[int]):
    """P identities x K tracklets per batch, split across DDP ranks.

    Each epoch every identity contributes groups of K of its tracklets (reshuffled each epoch;
    drawn with replacement when it has fewer than K): ``max(1, n_id // K)`` groups with
    ``epoch_size="tracklets"`` (torchreid: an epoch sees about every tracklet once), one group with
    ``epoch_size="identities"`` (Video-Person-ReID, on which STA re-implementations build: an epoch
    sees every identity once, 625 // 8 = 78 batches on MARS). Batches pick P
    distinct identities, favouring those with more groups left; the epoch has
    ``sum(groups) // P`` batches, rank r takes batches r, r + W, ... (every rank the same count).
    Use with ``DataLoader(batch_size=sampler.batch_size, sampler=sampler)``.

    Args:
        labels: identity label of each dataset item (tracklet).
        batch_ids: P, identities per batch.
        clips_per_id: K, tracklets per identity per batch.
        seed: with the epoch (``set_epoch``) it fixes the whole order.
        rank, world_size: this process's place in DDP.
        epoch_size: "tracklets" or "identities" (see above).
    """

    def __init__(
        self,
        labels: Sequence[int],
        batch_ids: int = 8,
        clips_per_id: int = 4,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch_size: str = "tracklets",
    ) -> None:
        if epoch_size not in EPOCH_SIZES:
            raise ValueError(f"unknown epoch_size {epoch_size!r}; choose from {EPOCH_SIZES}")
        if batch_ids < 1 or clips_per_id < 1:
            raise ValueError(f"need batch_ids >= 1 and clips_per_id >= 1, got {batch_ids}, {clips_per_id}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        labels = np.asarray(labels, dtype=np.int64).ravel()
        self.ids, inverse = np.unique(labels, return_inverse=True)
        if len(self.ids) < batch_ids:
            raise ValueError(f"batch_ids={batch_ids} identities per batch but the data has only {len(self.ids)}")
        order = np.argsort(inverse, kind="stable")
        self._members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
        self._groups = np.array(
            [max(1, len(m) // clips_per_id) if epoch_size == "tracklets" else 1 for m in self._members]
        )
        self.batch_ids, self.clips_per_id = batch_ids, clips_per_id
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0
        self.num_batches = int(self._groups.sum()) // batch_ids
        self.batches_per_rank = self.num_batches // world_size
        if self.batches_per_rank < 1:
            raise ValueError(
                f"an epoch has {self.num_batches} batches of {batch_ids} ids, fewer than world_size={world_size}"
            )

    @property
    def batch_size(self) -> int:
        return self.batch_ids * self.clips_per_id

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _draw_groups(self, rng: np.random.Generator, members: np.ndarray, count: int) -> np.ndarray:
        k = self.clips_per_id
        if len(members) < k:
            picks = np.concatenate([rng.permutation(members), rng.choice(members, k - len(members))])
            return picks[None, :]
        return rng.permutation(members)[: count * k].reshape(count, k)

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """All ranks' batches of ``epoch``: ``(num_batches, P * K)`` dataset indices."""
        rng = np.random.default_rng([self.seed, epoch])
        groups = [self._draw_groups(rng, m, g) for m, g in zip(self._members, self._groups)]
        left = self._groups.copy()
        batches = np.empty((self.num_batches, self.batch_size), dtype=np.int64)
        for b in range(self.num_batches):
            available = np.flatnonzero(left > 0)
            if len(available) >= self.batch_ids:
                weights = left[available] / left[available].sum()
                chosen = rng.choice(available, self.batch_ids, replace=False, p=weights)
            else:  # few ids hold the last groups: fill the batch with fresh groups of other ids
                others = rng.choice(np.flatnonzero(left == 0), self.batch_ids - len(available), replace=False)
                chosen = np.concatenate([available, others])
            rows = []
            for i in chosen:
                if left[i] > 0:
                    left[i] -= 1
                    rows.append(groups[i][left[i]])
                else:
                    rows.append(self._draw_groups(rng, self._members[i], 1)[0])
            batches[b] = np.concatenate(rows)
        return batches

    def __iter__(self):
        mine = self.epoch_batches(self.epoch)[self.rank :: self.world_size][: self.batches_per_rank]
        return iter(mine.ravel().tolist())

    def __len__(self) -> int:
        return self.batches_per_rank * self.batch_size


class TrainClipDataset(Dataset):
    """Training clips: restricted random frames of a tracklet, one augmentation draw per clip.

    Item ``i`` -> ``(clip float32 (T, 3, H, W) ImageNet-normalised, label int, camera int)``.
    Randomness comes from a per-process generator seeded by ``(seed, epoch, worker id)``: the
    same seed, epoch (``set_epoch``, before the DataLoader iterator starts) and worker count give
    the same clips, independent of torch's global RNG; a repeated index still gets fresh frames.
    """

    def __init__(
        self,
        tracklets: Sequence[Tracklet],
        seq_len: int = 4,
        height: int = 256,
        width: int = 128,
        seed: int = 0,
        pad: int = 10,
        flip_prob: float = 0.5,
        erasing_prob: float = 0.0,
    ) -> None:
        if seq_len < 1 or height < 1 or width < 1:
            raise ValueError(f"need seq_len, height, width >= 1, got {seq_len}, {height}, {width}")
        self.tracklets = list(tracklets)
        self.seq_len, self.height, self.width = seq_len, height, width
        self.seed, self.epoch = seed, 0
        self.augment = ClipAugment(height, width, pad=pad, flip_prob=flip_prob, erasing_prob=erasing_prob)
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng_state(self) -> dict | None:
        """The main-process generator's state (``workers=0``) for an exact resume, or None."""
        if self._rng is None or self._rng_key is None or self._rng_key[1] != -1:
            return None
        return {"epoch": int(self._rng_key[0]), "state": self._rng.bit_generator.state}

    def set_rng_state(self, saved: dict | None) -> None:
        """Continue from ``rng_state()`` when it belongs to the current epoch; else keep the seeded draw."""
        if saved is None or saved["epoch"] != self.epoch:
            return
        rng = np.random.default_rng()
        rng.bit_generator.state = saved["state"]
        self._rng, self._rng_key = rng, (self.epoch, -1)

    def _generator(self) -> np.random.Generator:
        info = get_worker_info()
        key = (self.epoch, info.id if info is not None else -1)
        if self._rng is None or self._rng_key != key:
            self._rng = np.random.default_rng([self.seed, self.epoch, key[1] + 1])
            self._rng_key = key
        return self._rng

    def __len__(self) -> int:
        return len(self.tracklets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        tracklet = self.tracklets[index]
        rng = self._generator()
        frames = restricted_random_indices(tracklet.num_frames, self.seq_len, rng)
        clip = read_tracklet_frames(tracklet, frames, self.height, self.width)
        clip = torch.from_numpy(clip).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
        return self.augment(clip, rng), tracklet.label, tracklet.camera


@dataclass(frozen=True, eq=False)
class TestClips:
    """The test-time clips of one tracklet.

    Attributes:
        index: position of the tracklet in the dataset.
        clips: ``(C, T, H, W, 3)`` uint8 RGB, ready for ``Embedder.embed``.
        pid: the tracklet's label (MARS pid; 0 distractor, -1 junk).
        camera: its camera.
    """

    __test__ = False  # not a pytest test class

    index: int
    clips: np.ndarray
    pid: int
    camera: int


class TestClipDataset(Dataset):
    """Evaluation clips: item ``i`` -> ``TestClips`` of tracklet ``i`` (see ``test_clip_indices``).

    Each tracklet's randomness is ``default_rng([seed, i])``, so results do not depend on the
    worker count. Iterate with ``test_clip_loader`` to decode in DataLoader workers.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        tracklets: Sequence[Tracklet],
        seq_len: int = 4,
        clips: int | str = "all",
        height: int = 256,
        width: int = 128,
        seed: int = 0,
    ) -> None:
        _check_clips(clips)  # fail here, not later in a DataLoader worker
        _check_frames(1, seq_len)
        self.tracklets = list(tracklets)
        self.seq_len, self.clips, self.height, self.width, self.seed = seq_len, clips, height, width, seed

    def __len__(self) -> int:
        return len(self.tracklets)

    def __getitem__(self, index: int) -> TestClips:
        tracklet = self.tracklets[index]
        rng = np.random.default_rng([self.seed, index])
        indices = test_clip_indices(tracklet.num_frames, self.seq_len, self.clips, rng)
        unique, position = np.unique(indices, return_inverse=True)
        frames = read_tracklet_frames(tracklet, unique, self.height, self.width)
        clips = frames[position.reshape(indices.shape)]
        return TestClips(index=index, clips=clips, pid=tracklet.pid, camera=tracklet.camera)


def _as_is(item: TestClips) -> TestClips:
    return item


def test_clip_loader(dataset: TestClipDataset, num_workers: int = 0) -> DataLoader:
    """A DataLoader yielding one ``TestClips`` per tracklet, in order, decoded by ``num_workers``."""
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_as_is)


test_clip_loader.__test__ = False  # not a pytest test when imported into a test module
