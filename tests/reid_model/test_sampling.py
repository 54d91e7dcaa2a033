"""Clip sampling: restricted random frames, AAS test clips, the P x K identity sampler."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from reid_model.data.mars import load_mars
from reid_model.data.sampling import (
    IdentitySampler,
    TestClipDataset,
    TestClips,
    TrainClipDataset,
    restricted_random_indices,
    test_clip_indices,
    test_clip_loader,
)
from reid_model.data.transforms import ClipAugment, read_frame, read_frames
from reid_model.preprocess import preprocess_clips
from tests.synthetic_mars import build_synthetic_mars


@pytest.mark.parametrize("seq_len", [1, 3, 4, 8])
def test_restricted_random_indices_stay_in_their_chunks(seq_len: int) -> None:
    rng = np.random.default_rng(0)
    for n in range(seq_len, 40):
        bounds = [i * n // seq_len for i in range(seq_len + 1)]  # chunk i = [bounds[i], bounds[i + 1])
        chunk_of = np.searchsorted(bounds, np.arange(n), side="right") - 1
        seen = np.zeros(n, dtype=bool)
        for _ in range(40 * (n // seq_len + 1)):
            idx = restricted_random_indices(n, seq_len, rng)
            assert idx.shape == (seq_len,) and idx.dtype == np.int64
            assert np.array_equal(chunk_of[idx], np.arange(seq_len)), (n, idx)
            seen[idx] = True
        assert seen.all(), f"n={n}: frames never drawn: {np.flatnonzero(~seen)}"


@pytest.mark.parametrize(
    ("n", "seq_len", "expected"),
    [(1, 4, [0, 0, 0, 0]), (2, 4, [0, 0, 1, 1]), (3, 4, [0, 0, 1, 2]), (3, 6, [0, 0, 1, 1, 2, 2])],
)
def test_restricted_random_short_sequences_repeat_frames(n: int, seq_len: int, expected: list[int]) -> None:
    assert restricted_random_indices(n, seq_len, np.random.default_rng(1)).tolist() == expected


def test_restricted_random_is_seeded_and_checks_input() -> None:
    a = [restricted_random_indices(50, 4, np.random.default_rng(7)).tolist() for _ in range(2)]
    draws = {tuple(restricted_random_indices(50, 4, np.random.default_rng(s))) for s in range(10)}
    assert a[0] == a[1] and len(draws) > 1
    for bad in [(0, 4), (5, 0)]:
        with pytest.raises(ValueError, match="num_frames >= 1 and seq_len >= 1"):
            restricted_random_indices(*bad, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("n", "seq_len", "expected"),
    [
        (8, 4, [[0, 1, 2, 3], [4, 5, 6, 7]]),
        (10, 4, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 8, 9, 9]]),
        (9, 4, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 8, 8, 8]]),
        (11, 4, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 8, 9, 10]]),
        (3, 4, [[0, 0, 1, 2]]),
        (1, 4, [[0, 0, 0, 0]]),
        (5, 2, [[0, 1], [2, 3], [4, 4]]),
        (3, 1, [[0], [1], [2]]),
    ],
)
def test_all_clips_exact(n: int, seq_len: int, expected: list[list[int]]) -> None:
    out = test_clip_indices(n, seq_len, "all")
    assert out.dtype == np.int64 and out.tolist() == expected


def test_k_clips_are_evenly_spread_and_non_overlapping() -> None:
    # 40 frames -> 10 clips; k clips take the centres of k equal parts.
    assert test_clip_indices(40, 4, 2).tolist() == [[8, 9, 10, 11], [28, 29, 30, 31]]
    assert test_clip_indices(40, 4, 4)[:, 0].tolist() == [4, 12, 24, 32]
    assert test_clip_indices(40, 4, 10).tolist() == test_clip_indices(40, 4, "all").tolist()
    assert test_clip_indices(10, 4, 4).tolist() == test_clip_indices(10, 4, "all").tolist()  # fewer exist
    for n in range(1, 60):
        for k in range(1, 8):
            out = test_clip_indices(n, 4, k)
            assert len(out) == min(k, -(-n // 4))
            firsts = out[:, 0]
            assert (np.diff(firsts) >= 4).all()  # distinct, non-overlapping clips, in order


def test_one_random_clip_is_seeded() -> None:
    everything = test_clip_indices(40, 4, "all").tolist()
    picks = [test_clip_indices(40, 4, 1, np.random.default_rng(s)).tolist() for s in range(30)]
    assert all(len(p) == 1 and p[0] in everything for p in picks)
    assert len({tuple(p[0]) for p in picks}) > 3
    again = [test_clip_indices(40, 4, 1, np.random.default_rng(s)).tolist() for s in range(30)]
    assert picks == again
    assert test_clip_indices(40, 4, 1).tolist() == test_clip_indices(40, 4, 1).tolist()  # rng=None is seeded
    restricted = test_clip_indices(40, 4, "restricted", np.random.default_rng(3))
    assert restricted.tolist() == [restricted_random_indices(40, 4, np.random.default_rng(3)).tolist()]


@pytest.mark.parametrize("clips", [0, -2, "some", True, 1.5, None])
def test_bad_clips_setting(clips) -> None:
    with pytest.raises(ValueError, match="clips must be a positive int or one of all, restricted"):
        test_clip_indices(10, 4, clips)


def _labels() -> list[int]:
    # 7 ids with 1..13 tracklets each, interleaved like a real dataset's order.
    counts = {10: 13, 11: 1, 12: 2, 13: 4, 14: 6, 15: 9, 16: 3}
    labels = [pid for pid, c in counts.items() for _ in range(c)]
    return list(np.random.default_rng(0).permutation(labels))


def _check_batches(indices: list[int], labels: list[int], p: int, k: int) -> None:
    assert len(indices) % (p * k) == 0
    for start in range(0, len(indices), p * k):
        batch = np.array([labels[i] for i in indices[start : start + p * k]])
        ids, counts = np.unique(batch, return_counts=True)
        assert len(ids) == p and (counts == k).all(), batch


@pytest.mark.parametrize(("p", "k"), [(3, 4), (2, 2), (7, 1), (4, 3)])
def test_identity_sampler_batches_are_p_ids_by_k(p: int, k: int) -> None:
    labels = _labels()
    sampler = IdentitySampler(labels, batch_ids=p, clips_per_id=k, seed=5)
    for epoch in range(4):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(sampler) > 0
        assert all(0 <= i < len(labels) for i in indices)
        _check_batches(indices, labels, p, k)
    loader = DataLoader(TensorDataset(torch.tensor(labels)), batch_size=sampler.batch_size, sampler=sampler)
    for (batch,) in loader:
        assert sorted(np.unique(batch.numpy(), return_counts=True)[1].tolist()) == [k] * p


def test_identity_sampler_is_deterministic_and_covers_data() -> None:
    labels = _labels()
    a, b = IdentitySampler(labels, 3, 4, seed=1), IdentitySampler(labels, 3, 4, seed=1)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(IdentitySampler(labels, 3, 4, seed=2)) != list(IdentitySampler(labels, 3, 4, seed=1))
    seen = set()
    for epoch in range(10):
        a.set_epoch(epoch)
        seen.update(a)
    assert seen == set(range(len(labels)))


@pytest.mark.parametrize("world_size", [2, 3])
def test_identity_sampler_ddp_shares_are_disjoint_and_equal(world_size: int) -> None:
    labels = _labels()
    ranks = [IdentitySampler(labels, 2, 2, seed=3, rank=r, world_size=world_size) for r in range(world_size)]
    for s in ranks:
        s.set_epoch(2)
    everything = ranks[0].epoch_batches(2)
    shares = [np.array(list(s)).reshape(-1, 4) for s in ranks]
    assert len({len(s) for s in ranks}) == 1 and len({len(x) for x in shares}) == 1
    rows = [tuple(row) for share in shares for row in share]
    positions = [[tuple(r) for r in everything].index(row) for row in rows]
    assert len(set(positions)) == len(positions)  # no batch on two ranks
    assert len(positions) == (len(everything) // world_size) * world_size
    for share in shares:
        _check_batches(share.ravel().tolist(), labels, 2, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_ids": 8}, "only 7"),
        ({"batch_ids": 0}, "batch_ids >= 1"),
        ({"clips_per_id": 0}, "clips_per_id >= 1"),
        ({"rank": 2, "world_size": 2}, "0 <= rank < world_size"),
        ({"batch_ids": 7, "clips_per_id": 4, "world_size": 3}, "fewer than world_size=3"),
    ],
)
def test_identity_sampler_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IdentitySampler(_labels(), **kwargs)


# --- augmentation and the clip datasets (real JPEGs in a synthetic MARS tree) ---


def _normalise(frames_thwc: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> normalised (T, 3, H, W), through the inference path's function."""
    return preprocess_clips(torch.from_numpy(np.ascontiguousarray(frames_thwc))[None])[0]


def _crop_candidates(frame_chw: torch.Tensor, pad: int) -> tuple[list[tuple[int, int, bool]], torch.Tensor]:
    """Every (dy, dx, flip) a pad-then-crop-then-flip can give, normalised: params and (P, 3, H, W)."""
    _, h, w = frame_chw.shape
    padded = torch.nn.functional.pad(frame_chw, (pad, pad, pad, pad))
    params, crops = [], []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            for flip in (False, True):
                params.append((dy, dx, flip))
                crops.append(crop.flip(-1) if flip else crop)
    return params, _normalise(torch.stack(crops).permute(0, 2, 3, 1).numpy())


def _which(candidates: torch.Tensor, out_frame: torch.Tensor) -> int:
    err = (candidates - out_frame[None]).abs().amax(dim=(1, 2, 3))
    best = int(err.argmin())
    assert float(err[best]) < 1e-5 and int((err < 1e-5).sum()) == 1
    return best


def test_augmentation_draws_once_per_clip() -> None:
    t, h, w, pad = 4, 24, 16, 10  # wider than 2 * pad, so every crop overlaps the frame
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (t, 3, h, w), dtype=np.uint8))
    tables = [_crop_candidates(frames[i], pad) for i in range(t)]
    augment = ClipAugment(h, w, pad=pad)
    drawn = []
    for seed in range(40):
        out = augment(frames, np.random.default_rng(seed))
        assert out.shape == (t, 3, h, w) and out.dtype == torch.float32
        per_frame = {tables[i][0][_which(tables[i][1], out[i])] for i in range(t)}
        assert len(per_frame) == 1, per_frame  # the same crop and flip on every frame
        drawn.append(per_frame.pop())
        assert torch.equal(out, augment(frames, np.random.default_rng(seed)))  # seeded
    assert {flip for _, _, flip in drawn} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in drawn}) > 20
    same = frames[:1].expand(t, -1, -1, -1).contiguous()  # identical frames stay identical
    out = augment(same, np.random.default_rng(1))
    assert all(torch.equal(out[0], out[i]) for i in range(1, t))


def test_augmentation_rejects_wrong_size() -> None:
    with pytest.raises(ValueError, match=r"clip must be \(T, 3, 16, 8\) uint8, got shape \(4, 3, 8, 8\)"):
        ClipAugment(16, 8)(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), np.random.default_rng(0))


def test_random_erasing_blanks_one_rectangle_the_same_on_every_frame() -> None:
    t, h, w = 4, 64, 32
    frames = torch.full((t, 3, h, w), 200, dtype=torch.uint8)  # never the mean pixel, padding aside
    erased = []
    for seed in range(30):
        out = ClipAugment(h, w, pad=0, flip_prob=0.0, erasing_prob=0.5)(frames, np.random.default_rng(seed))
        blank = (out == 0).all(dim=1)  # the mean pixel is 0 after normalisation
        assert all(torch.equal(blank[0], blank[i]) for i in range(1, t))
        if blank.any():
            rows, cols = blank[0].nonzero(as_tuple=True)
            box = blank[0, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert bool(box.all()) and 0.02 * h * w <= int(blank[0].sum()) <= 0.4 * h * w + 1
        erased.append(bool(blank.any()))
    assert 5 <= sum(erased) <= 25  # about half the clips
    off = ClipAugment(h, w, pad=0, flip_prob=0.0)(frames, np.random.default_rng(0))
    assert not bool((off == 0).all(dim=1).any())
    with pytest.raises(ValueError, match="erasing_prob=1.5"):
        ClipAugment(h, w, erasing_prob=1.5)


@pytest.fixture(scope="module")
def mars(tmp_path_factory):
    return load_mars(build_synthetic_mars(tmp_path_factory.mktemp("mars"), frames_per_tracklet=(3, 9)))


def _frame_positions(tracklet, out: torch.Tensor, h: int, w: int) -> list[int]:
    """Which frame of ``tracklet`` each output frame is (un-augmented output)."""
    table = _normalise(read_frames(tracklet.paths, h, w))
    return [_which(table, frame) for frame in out]


def test_train_clips_are_restricted_random_frames_of_the_tracklet(mars) -> None:
    data = TrainClipDataset(mars.train, seq_len=4, height=32, width=16, seed=0, pad=0, flip_prob=0.0)
    assert len(data) == len(mars.train)
    for index, tracklet in enumerate(mars.train):
        clip, label, camera = data[index]
        assert clip.shape == (4, 3, 32, 16) and clip.dtype == torch.float32
        assert (label, camera) == (tracklet.label, tracklet.camera)
        got = _frame_positions(tracklet, clip, 32, 16)
        n = tracklet.num_frames
        assert [i * n // 4 <= f < max((i + 1) * n // 4, i * n // 4 + 1) for i, f in enumerate(got)] == [True] * 4


def test_train_clips_deterministic_per_seed_and_epoch(mars) -> None:
    def run(seed: int, epoch: int) -> torch.Tensor:
        data = TrainClipDataset(mars.train, seq_len=4, height=32, width=16, seed=seed)
        data.set_epoch(epoch)
        return torch.stack([data[i][0] for i in (0, 1, 2, 0, 0, 0)])

    first = run(0, 0)
    assert torch.equal(first, run(0, 0))
    assert not torch.equal(first, run(1, 0)) and not torch.equal(first, run(0, 1))
    assert not all(torch.equal(first[3], first[k]) for k in (4, 5))  # a repeated index gets fresh draws


def test_train_loader_with_workers(mars) -> None:
    labels = [t.label for t in mars.train]

    def run() -> list[tuple[torch.Tensor, torch.Tensor]]:
        sampler = IdentitySampler(labels, batch_ids=2, clips_per_id=2, seed=0)
        data = TrainClipDataset(mars.train, seq_len=4, height=32, width=16, seed=0)
        loader = DataLoader(data, batch_size=sampler.batch_size, sampler=sampler, num_workers=2)
        return [(clips, label) for clips, label, _ in loader]

    batches = run()
    assert len(batches) == 2
    for clips, label in batches:
        assert clips.shape == (4, 4, 3, 32, 16)
        assert sorted(np.unique(label.numpy(), return_counts=True)[1].tolist()) == [2, 2]
    again = run()
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))


def _damaged(tracklet, tmp_path: Path, content: bytes | None):
    paths = list(tracklet.paths)
    paths[0] = tmp_path / "0001C1T0001F001.jpg"
    if content is not None:
        paths[0].write_bytes(content)
    return type(tracklet)(paths=tuple(paths[:1]) * 4, pid=tracklet.pid, camera=tracklet.camera, label=0)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, FileNotFoundError, "frame image not found: .*0001C1T0001F001.jpg"),
        (b"definitely not a jpeg", ValueError, "cannot decode frame image .*0001C1T0001F001.jpg"),
        ("truncated", ValueError, "cannot decode frame image .*0001C1T0001F001.jpg"),
    ],
)
def test_bad_frames_name_the_file(mars, tmp_path: Path, content, error, message) -> None:
    if content == "truncated":
        content = mars.train[0].paths[0].read_bytes()[:200]
    bad = _damaged(mars.train[0], tmp_path, content)
    with pytest.raises(error, match=message):
        TrainClipDataset([bad], height=32, width=16)[0]
    with pytest.raises(error, match=message):
        TestClipDataset([bad], height=32, width=16)[0]


def test_read_frame_gives_rgb_at_the_asked_size(mars) -> None:
    path = mars.train[0].paths[0]
    native = read_frame(path, 64, 32)  # the synthetic JPEGs are 64 x 32
    assert native.shape == (64, 32, 3) and native.dtype == np.uint8
    assert np.array_equal(native, np.asarray(Image.open(path).convert("RGB")))
    small = read_frame(path, 32, 16)
    assert small.shape == (32, 16, 3)
    assert np.abs(small.astype(int) - native[::2, ::2].astype(int)).mean() < 12
    # Identity 1's top half is saturated blue-ish and its bottom half orange-ish: channels are RGB, not BGR.
    expected_top = np.array(colorsys.hsv_to_rgb(0.618033988749895, 1.0, 1.0)) * 255
    assert np.abs(native[2:6].reshape(-1, 3).mean(axis=0) - expected_top).max() < 20


@pytest.mark.parametrize("clips", ["all", 1, 2, "restricted"])
def test_test_clips_are_the_indexed_frames(mars, clips) -> None:
    data = TestClipDataset(mars.test, seq_len=4, clips=clips, height=64, width=32, seed=9)
    assert len(data) == len(mars.test)
    for index, tracklet in enumerate(mars.test):
        item = data[index]
        assert isinstance(item, TestClips)
        assert (item.index, item.pid, item.camera) == (index, tracklet.pid, tracklet.camera)
        indices = test_clip_indices(tracklet.num_frames, 4, clips, np.random.default_rng([9, index]))
        assert item.clips.dtype == np.uint8 and item.clips.shape == (*indices.shape, 64, 32, 3)
        assert np.array_equal(item.clips, read_frames(tracklet.paths, 64, 32)[indices])


def test_test_clip_loader_workers_match_main_process(mars) -> None:
    data = TestClipDataset(mars.test, seq_len=4, clips=1, height=32, width=16, seed=2)
    serial = list(test_clip_loader(data, num_workers=0))
    parallel = list(test_clip_loader(data, num_workers=2))
    assert [s.index for s in serial] == [p.index for p in parallel] == list(range(len(mars.test)))
    assert all(isinstance(p.clips, np.ndarray) and np.array_equal(s.clips, p.clips) for s, p in zip(serial, parallel))


def test_test_clip_dataset_checks_clips_early(mars) -> None:
    with pytest.raises(ValueError, match="clips must be a positive int"):
        TestClipDataset(mars.test, clips="every")


def test_identities_epoch_has_each_identity_once_with_k_clips():
    # 5 ids with 2..10 tracklets each; "identities" epochs see every id exactly once per epoch.
    labels = np.repeat(np.arange(5), [2, 4, 6, 8, 10])
    sampler = IdentitySampler(labels, batch_ids=5, clips_per_id=2, seed=3, epoch_size="identities")
    batches = sampler.epoch_batches(0)
    assert batches.shape == (1, 10)
    ids, counts = np.unique(labels[batches[0]], return_counts=True)
    assert ids.tolist() == [0, 1, 2, 3, 4] and counts.tolist() == [2] * 5
    tracklet_epoch = IdentitySampler(labels, batch_ids=5, clips_per_id=2, seed=3, epoch_size="tracklets")
    assert tracklet_epoch.num_batches == (1 + 2 + 3 + 4 + 5) // 5


def test_unknown_epoch_size_is_rejected():
    with pytest.raises(ValueError, match="epoch_size"):
        IdentitySampler([0, 0, 1, 1], batch_ids=2, clips_per_id=2, epoch_size="frames")
