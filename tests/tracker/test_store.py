"""The SQLite identity store: what it records, search, forget, retention, migration, permissions, errors."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import numpy as np
import pytest

from tracker.signatures import Signature
from tracker.store import ModelInfo, ModelMismatch, StoreBusy, StoreError, TrackSighting, open_store
from tracker.store import schema
from tracker.store.index import ExactIndex
from tracker.types import TrackMember

MODEL = ModelInfo("fake.onnx", "ab" * 32, 8)
DAY = 86400.0


def sighting(gid: int, track: int, vector, clips: int = 2, camera: str = "cam0", frames=(1, 20), ended=False,
             thumb: np.ndarray | None = None, score: float = 1.0) -> TrackSighting:
    member = TrackMember(camera, track, frames[0], frames[1], frames[0] / 10, frames[1] / 10, clips)
    return TrackSighting(gid, member, Signature(np.asarray(vector, np.float64), clips), thumb, score, ended)


def unit(i: int, dim: int = 8) -> np.ndarray:
    v = np.full(dim, 0.05)
    v[i] = 1.0
    return v


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "ids.store", MODEL, writer=True) as s:
        yield s


def file_bytes(path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def test_a_new_store_is_private_and_records_its_schema_and_model(tmp_path, store):
    run = store.begin_run({"cam0": "a.mp4"})
    store.record(run, [sighting(1, 1, unit(0))], 2)
    for suffix in ("", "-wal", "-shm", ".lock"):
        assert os.stat(f"{store.path}{suffix}").st_mode & 0o777 == 0o600, suffix
    assert store.stats()["schema_version"] == schema.SCHEMA_VERSION
    store.close()
    with open_store(tmp_path / "ids.store") as reader:  # a reader learns the model from the file
        assert reader.model == ModelInfo("fake.onnx", "ab" * 32, 8, "")
        assert not reader.writable


def test_identity_signature_is_the_clip_weighted_mean_of_its_sightings_and_follows_moves(store):
    run = store.begin_run({"cam0": "a.mp4", "cam1": "b.mp4"})
    store.record(run, [sighting(1, 1, unit(0), 2), sighting(1, 2, unit(1), 3, camera="cam1")], 3)
    ident = store.identity(1)
    assert ident.signature.count == 5 and ident.cameras == ("cam0", "cam1") and ident.sightings == 2
    np.testing.assert_allclose(ident.signature.mean, (2 * unit(0) + 3 * unit(1)) / 5, atol=1e-6)
    # the live track 2 gains a clip and moves to identity 2 (revision): identity 1 keeps only track 1
    store.record(run, [sighting(2, 2, unit(1), 4, camera="cam1")], 3)
    np.testing.assert_allclose(store.identity(1).signature.mean, unit(0), atol=1e-6)
    assert store.identity(1).signature.count == 2 and store.identity(2).signature.count == 4
    # track 1 moves too: identity 1 has no sighting left and is dropped
    store.record(run, [sighting(2, 1, unit(0), 2, ended=True)], 3)
    assert store.identity(1) is None and store.identity(2).sightings == 2
    assert sorted(h.source for h in store.history(2)) == ["a.mp4", "b.mp4"]
    identities, next_id = store.load_identities()
    assert [gid for gid, _ in identities] == [2] and next_id == 3


def test_search_ranks_by_cosine_and_returns_cameras_times_and_best_thumbnail(store):
    run = store.begin_run({"cam0": "a.mp4"})
    dark = np.zeros((64, 32, 3), np.uint8)
    bright = np.full((64, 32, 3), 200, np.uint8)
    store.record(run, [sighting(1, 1, unit(0), thumb=dark, score=1.0), sighting(2, 2, unit(1)),
                       sighting(3, 3, unit(2))], 4)
    store.record(run, [sighting(1, 1, unit(0), thumb=bright, score=5.0)], 4)  # a better crop replaces it
    store.record(run, [sighting(1, 1, unit(0), thumb=dark, score=2.0)], 4)  # a worse one does not
    hits = store.search(unit(1) + 0.3 * unit(0), top=2)
    assert [h.identity.global_id for h in hits] == [2, 1]
    assert hits[0].similarity > hits[1].similarity > 0
    assert hits[1].best_sighting and store.thumbnail(hits[1].best_sighting)[:2] == b"\xff\xd8"  # a JPEG
    import cv2
    jpeg = np.frombuffer(store.thumbnail(hits[1].best_sighting), np.uint8)
    assert cv2.imdecode(jpeg, cv2.IMREAD_COLOR).mean() > 150  # the bright (better) crop
    with pytest.raises(ValueError, match=r"\(8,\) raw feature"):
        store.search(np.ones(4))


def test_a_reader_sees_a_writers_commits_and_never_blocks(tmp_path, store):
    run = store.begin_run({"cam0": "a.mp4"})
    reader = open_store(store.path)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(1, 120):
                store.record(run, [sighting(i, i, unit(i % 8) + i * 1e-3)], i + 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    seen = 0
    while writer.is_alive():
        seen = max(seen, len(reader.search(unit(3), top=5)))
        assert reader.integrity_check() == "ok"
    writer.join()
    assert not errors
    assert reader.refresh_index() == 119 and seen >= 1
    reader.close()


def test_forget_erases_every_vector_and_thumbnail_from_the_file(store):
    run = store.begin_run({"cam0": "a.mp4"})
    rng = np.random.default_rng(0)
    secret = rng.normal(size=8)
    photo = rng.integers(0, 255, (64, 32, 3), np.uint8)
    store.record(run, [sighting(7, 1, secret, thumb=photo), sighting(8, 2, unit(1))], 9)
    store.record(run, [sighting(7, 1, secret, 3, ended=True, thumb=photo)], 9)
    blobs = [np.asarray(secret, np.float32).tobytes(), store.thumbnail(store.best_sighting(7))]
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert all(b in file_bytes(store.path) for b in blobs)  # the check below can fail
    report = store.forget(7)
    assert (report.sightings, report.thumbnails, report.leftovers, report.wal_truncated) == (1, 1, 0, True)
    data = file_bytes(store.path)
    assert not any(b[len(b) // 2 - 32:len(b) // 2 + 32] in data for b in blobs)
    assert store.identity(7) is None and store.history(7) == [] and store.forgotten_at(7) is not None
    assert [h.identity.global_id for h in store.search(secret)] == [8]
    # a tracker still running with that person does not write them back
    store.record(run, [sighting(7, 1, secret, 4, ended=True)], 9)
    assert store.identity(7) is None
    assert store.load_identities()[1] == 9  # the id is never given again
    with pytest.raises(KeyError, match="no identity 7"):
        store.forget(7)


def test_retention_drops_old_sightings_recomputes_identities_and_drops_empty_ones(store):
    run = store.begin_run({"cam0": "a.mp4"})
    now = time.time()
    thumb = np.full((64, 32, 3), 90, np.uint8)
    store.record(run, [sighting(1, 1, unit(0), 2, ended=True, thumb=thumb), sighting(2, 2, unit(1), ended=True)], 3,
                 now=now - 40 * DAY)
    store.record(run, [sighting(1, 3, unit(2), 3, ended=True)], 3, now=now - 1 * DAY)
    report = store.apply_retention(30, now=now)
    assert (report.sightings, report.thumbnails, report.identities_dropped, report.identities_updated) == (2, 1, 1, 1)
    assert store.identity(2) is None
    ident = store.identity(1)
    assert ident.sightings == 1 and ident.signature.count == 3
    np.testing.assert_allclose(ident.signature.mean, unit(2), atol=1e-6)  # nothing of the old sighting left
    assert [h.identity.global_id for h in store.search(unit(1))] == [1]
    with pytest.raises(ValueError, match="> 0 days"):
        store.apply_retention(0)


def test_a_version_1_store_is_migrated_with_its_thumbnails(tmp_path):
    path = tmp_path / "old.store"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in schema._statements(schema.SCHEMA_V1):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    for key, value in (("model_name", MODEL.name), ("model_sha256", MODEL.sha256), ("model_path", ""),
                       ("feature_dim", 8), ("next_global_id", 5), ("write_seq", 1), ("created_at", 0)):
        conn.execute("INSERT INTO meta VALUES (?, ?)", (key, str(value)))
    conn.execute("INSERT INTO runs VALUES (1, 0, 1, '{\"cam0\": \"a.mp4\"}', 'host', 1)")
    conn.execute("INSERT INTO identities VALUES (4, 2, 0, 1, ?, 1)", (np.float32(unit(3)).tobytes(),))
    conn.execute("INSERT INTO sightings VALUES (1, 4, 1, 'cam0', 'a.mp4', 3, 1, 9, 0, 0.9, 0, 1, 2, ?, 1, ?)",
                 (np.float32(unit(3)).tobytes(), b"\xff\xd8old-jpeg"))
    conn.close()
    with open_store(path, MODEL, writer=True) as store:
        assert store.stats()["schema_version"] == 2
        assert store.thumbnail(1) == b"\xff\xd8old-jpeg" and store.history(4)[0].has_thumbnail
        assert store.load_identities()[1] == 5 and [h.identity.global_id for h in store.search(unit(3))] == [4]
    conn = sqlite3.connect(path)
    assert "thumbnail" not in [r[1] for r in conn.execute("PRAGMA table_info(sightings)")]
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 3; this mcreid reads versions up to 2"):
        open_store(path)


@pytest.mark.parametrize("case, message", [
    ("missing", "identity store not found: .*expected a file written by"),
    ("folder", "is a folder; expected the store's file"),
    ("text", "not an SQLite database|cannot open the identity store"),
    ("other_sqlite", "not an identity store"),
])
def test_bad_store_paths_are_one_clear_error(tmp_path, case, message):
    path = tmp_path / "x.store"
    if case == "folder":
        path.mkdir()
    elif case == "text":
        path.write_text("hello, not a database " * 100)
    elif case == "other_sqlite":
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match=message):
        open_store(path)


def test_a_second_writer_or_another_model_is_refused(tmp_path, store):
    with pytest.raises(StoreBusy, match=rf"another tracker \(pid {os.getpid()}\)"):
        open_store(store.path, MODEL, writer=True)
    with open_store(store.path) as reader:  # reading meanwhile is fine
        assert reader.stats()["identities"] == 0
    store.close()
    with pytest.raises(ModelMismatch, match=r"holds vectors of the re-ID model fake.onnx .* other.onnx"):
        open_store(store.path, ModelInfo("other.onnx", "cd" * 32, 8), writer=True)
    with pytest.raises(ModelMismatch, match="other.onnx"):
        open_store(store.path, ModelInfo("other.onnx", "cd" * 32, 8))  # a reader asking for a model is checked too
    open_store(store.path, MODEL, writer=True).close()  # the lock was released with the mismatch


def test_a_full_disk_is_a_clear_error_and_nothing_half_written(store):
    run = store.begin_run({"cam0": "a.mp4"})
    store.record(run, [sighting(1, 1, unit(0))], 2)
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full" at this size
    big = [sighting(i, i, np.random.default_rng(i).normal(size=8), thumb=np.random.default_rng(i).integers(
        0, 255, (128, 64, 3), np.uint8)) for i in range(2, 40)]
    with pytest.raises(sqlite3.OperationalError) as info:
        store.record(run, big, 41)
    from tracker.store.sqlite_store import describe_sqlite_error
    assert describe_sqlite_error(info.value).startswith("the disk is full")
    assert store.stats()["identities"] == 1 and store.integrity_check() == "ok"


def test_exact_index_matches_brute_force_and_reuses_rows():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    index = ExactIndex(16)
    index.upsert(np.arange(1, 51), vectors)
    index.remove([3, 4, 99])
    index.upsert(np.array([3]), vectors[10])  # id 3 back, with id 11's vector
    query = rng.normal(size=16)
    ids, sims = index.search(query, 5)
    unit_rows = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    truth = {i + 1: float(unit_rows[i] @ query / np.linalg.norm(query)) for i in range(50) if i + 1 != 4}
    truth[3] = truth[11]
    best = sorted(truth, key=lambda k: -truth[k])[:5]
    assert sorted(ids.tolist()) == sorted(best) and len(index) == 49
    np.testing.assert_allclose(sims, sorted([truth[k] for k in best], reverse=True), rtol=1e-5)
    assert index.search(np.zeros(16), 3)[0].size == 0
    with pytest.raises(ValueError, match=r"query must have shape \(16,\)"):
        index.search(np.ones(3), 1)


def test_the_recorder_survives_a_full_disk_and_writes_the_backlog_once_there_is_room(store, caplog):
    from tracker.store.recorder import StoreRecorder

    run = store.begin_run({"cam0": "a.mp4"})
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    recorder = StoreRecorder(store, run, interval_s=0.05)
    rng = np.random.default_rng(3)
    for i in range(1, 30):  # ended tracks with thumbnails: more than two pages
        recorder.ended(sighting(i, i, rng.normal(size=8), ended=True,
                                thumb=rng.integers(0, 255, (128, 64, 3), np.uint8)))
    recorder.submit([], 30)
    deadline = time.monotonic() + 10
    while not recorder.failures and time.monotonic() < deadline:
        time.sleep(0.01)
    assert recorder.failures and recorder.error.startswith("cannot write the identity store: the disk is full")
    assert "tracking goes on, writes are retried" in caplog.text
    assert store.stats()["sightings"] == 0 and store.integrity_check() == "ok"
    store._conn.execute("PRAGMA max_page_count = 1000000")  # room again
    recorder.submit([], 30)
    assert recorder.close(30)  # the backlog is written at the latest when closing
    assert store.stats()["sightings"] == 29 and recorder.error == "" and recorder.commits >= 1
    assert store.runs()[0].ended_at is not None
