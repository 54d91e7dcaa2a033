"""``--store``/``--retention-days`` for the commands that run a pipeline (``python -m tracker run``, the viewer).

``check_store_path`` runs before any model loads (a folder, a file that is no store, a newer schema, a
store another tracker records into: one error line, exit 2). ``StoreSession.start`` then opens the
store with the loaded re-ID model, applies retention, seeds the matcher with the stored identities
(their old global ids; new ids continue after the highest ever given) and attaches a
``StoreRecorder`` to the pipeline.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tracker.store.base import IdentityStore, ModelInfo, StoreError
from tracker.store.recorder import StoreRecorder
from tracker.store.sqlite_store import open_store

log = logging.getLogger(__name__)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("identity store")
    group.add_argument("--store", type=Path, default=None,
                       help="SQLite file keeping identities, sightings and vectors across runs (created if "
                            "missing, readable by its owner only): a person seen in an earlier run gets their old "
                            "global id back; search it with mcreid-search")
    group.add_argument("--retention-days", type=float, default=None,
                       help="with --store: drop sightings, thumbnails and vectors older than this many days "
                            "(at start and every 10 minutes), and identities left with nothing")


def check_store_args(args: argparse.Namespace) -> None:
    """ValueError for store options that cannot work; StoreError for a store path that cannot."""
    if args.retention_days is not None:
        if args.store is None:
            raise ValueError("--retention-days needs --store")
        if args.retention_days <= 0:
            raise ValueError(f"--retention-days must be > 0, got {args.retention_days}")
    if args.store is not None:
        check_store_path(args.store)


def check_store_path(path: Path) -> None:
    """Before any model loads: the path can become a store, or is one this mcreid can read and that no
    other tracker records into.

    Raises:
        StoreError: with the path and the reason.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise StoreError(f"--store {path} is a folder; expected the store's file (it is created if missing)")
    if path.exists():
        open_store(path).close()  # a store, of a schema this mcreid reads
        _check_not_busy(path)
        return
    parent = path.absolute().parent
    existing = next((p for p in [parent, *parent.parents] if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise StoreError(f"--store {path}: cannot create it in {existing} (not a writable folder)")


def _check_not_busy(path: Path) -> None:
    try:
        import fcntl
    except ImportError:
        return
    lock = Path(f"{path}.lock")
    if not lock.exists():
        return
    with open(lock, "rb") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            holder = fh.read(32).decode(errors="replace").strip() or "?"
            raise StoreError(f"identity store {path} is being recorded into by another tracker (pid {holder}); one "
                             "tracker writes a store at a time (searching it meanwhile is fine)") from None
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def model_info(embedder: Any) -> ModelInfo:
    """What identifies an embedder's vectors: its model file's name and sha256 (or, for an embedder
    without a file, its class name) and the feature length."""
    path = getattr(embedder, "path", None)
    if path is None or not Path(path).is_file():
        return ModelInfo(type(embedder).__name__, "", int(embedder.feature_dim))
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return ModelInfo(Path(path).name, digest.hexdigest(), int(embedder.feature_dim), str(Path(path).resolve()))


@dataclass
class StoreSession:
    """A pipeline recording into a store."""

    store: IdentityStore
    recorder: StoreRecorder
    pipeline: Any

    @classmethod
    def start(cls, path: Path, pipeline: Any, sources: dict[str, str], retention_days: float | None = None,
              interval_s: float = 0.5) -> StoreSession:
        """Open ``path`` for writing with the pipeline's re-ID model, apply retention, seed the matcher,
        register the run and attach a recorder.

        Raises:
            StoreError: the store cannot be used (``ModelMismatch``: made with another model).
        """
        store = open_store(path, model_info(pipeline.embedder), writer=True)
        try:
            if retention_days is not None:
                store.apply_retention(retention_days)
            identities, next_id = store.load_identities()
            pipeline.matcher.seed(identities, next_id)
            run_id = store.begin_run(sources)
        except BaseException:
            store.close()
            raise
        log.info("identity store %s: run %d starts with %d identities from earlier runs; new ids from %d", path,
                 run_id, len(identities), pipeline.matcher.next_global_id)
        recorder = StoreRecorder(store, run_id, interval_s, retention_days)
        pipeline.attach_recorder(recorder)
        return cls(store, recorder, pipeline)

    def close(self) -> bool:
        """After the pipeline has settled every track: write the rest, end the run, close the store.
        True when everything was written."""
        try:
            clean = self.recorder.close(self.pipeline.next_global_id)
            step = self.pipeline.timings.samples.get("store") or [0.0]
            commits = list(self.recorder.commit_s) or [0.0]
            log.info("identity store %s: %d commits (writer thread: median %.1f ms, max %.1f ms); recorder cost "
                     "per pipeline step: mean %.3f ms, max %.2f ms", self.store.path, self.recorder.commits,
                     1000 * float(np.median(commits)), 1000 * max(commits), 1000 * float(np.mean(step)),
                     1000 * max(step))
            return clean
        finally:
            self.store.close()
