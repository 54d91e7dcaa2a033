"""Opening an identity store file: create it private, take the writer lock, switch to WAL, create or
migrate the schema, check the re-ID model (``open_store``)."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from tracker.store import schema
from tracker.store.base import ModelInfo, ModelMismatch, StoreBusy, StoreError
from tracker.store.sqlite_store import SqliteIdentityStore, describe_sqlite_error

log = logging.getLogger(__name__)


def open_store(path: str | Path, model: ModelInfo | None = None, writer: bool = False) -> SqliteIdentityStore:
    """Open (a writer also creates) an identity store.

    Args:
        path: the store file.
        model: the re-ID model the caller embeds with. A writer needs it (it is recorded in a new
            store and must match an existing one); a reader may pass it to have it checked.
        writer: take the writer lock (one tracker per store) and create the file if missing.

    Raises:
        StoreError: the path is a folder, the file is missing (reader), unreadable, not a store,
            from a newer mcreid, read-only or full (writer); the message names the file and why.
        StoreBusy: another tracker records into it.
        ModelMismatch: ``model`` is not the model the store's vectors were made with.
    """
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise StoreError(f"--store {path} is a folder; expected the store's file (a writer creates it if missing)")
    if writer and model is None:
        raise ValueError("a writer must say which re-ID model it embeds with")
    created = False
    if not path.exists():
        if not writer:
            raise StoreError(f"identity store not found: {path}; expected a file written by "
                             f"`python -m tracker run --store {path}`")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # owner only, before SQLite opens it
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot create the identity store {path}: {exc.strerror or exc}") from exc
    lock_fd = _writer_lock(path) if writer else None
    try:
        conn = _connect(path, writer)
        stored = _prepare(conn, path, model, writer, created)
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        raise
    if model is not None and not model.same_model(stored):
        conn.close()
        if lock_fd is not None:
            os.close(lock_fd)
        raise ModelMismatch(
            f"identity store {path} holds vectors of the re-ID model {stored.name} (sha256 {stored.sha256[:12] or '-'}, "
            f"{stored.feature_dim}-d); {model.name} (sha256 {model.sha256[:12] or '-'}, {model.feature_dim}-d) was "
            f"given. Vectors of two models cannot be compared: use --reid {stored.path or stored.name}, or another "
            "store")
    return SqliteIdentityStore(path, conn, stored, lock_fd)


def _writer_lock(path: Path) -> int:
    """An exclusive flock on ``PATH.lock`` holding the writer's pid; StoreBusy if another holds it."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no second-writer guard
        return os.open(os.devnull, os.O_RDONLY)
    lock_path = Path(f"{path}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the identity store's lock file {lock_path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StoreBusy(f"identity store {path} is being recorded into by another tracker (pid {holder}); one "
                        "tracker writes a store at a time (searching it meanwhile is fine)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _connect(path: Path, writer: bool) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if writer:
            # a new file gets 16 KiB pages: seven 2 KiB vector rows a page instead of one (4 KiB pages)
            conn.execute("PRAGMA page_size = 16384")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"identity store {path}: cannot switch it to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        return conn
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the identity store {path}: {describe_sqlite_error(exc)}") from exc


def _prepare(conn: sqlite3.Connection, path: Path, model: ModelInfo | None, writer: bool,
             created: bool) -> ModelInfo:
    """Create or migrate the schema (writers), check the version, read the stored model."""
    try:
        version = schema.schema_version(conn)
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if version == 0 and tables == 0:
            if not writer:
                raise StoreError(f"{path} is an empty file, not an identity store")
            conn.execute("BEGIN IMMEDIATE")
            schema.create(conn)
            for key, value in (("model_name", model.name), ("model_sha256", model.sha256),
                               ("model_path", model.path), ("feature_dim", model.feature_dim),
                               ("next_global_id", 1), ("write_seq", 0), ("created_at", time.time())):
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, str(value)))
            conn.execute("COMMIT")
            log.info("identity store %s created (model %s)", path, model.name)
        elif version == 0 or "meta" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}:
            raise StoreError(f"{path} is an SQLite file but not an identity store (no mcreid schema)")
        elif version != schema.SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                old = schema.migrate(conn, str(path))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            log.info("identity store %s migrated from schema version %d to %d", path, old, schema.SCHEMA_VERSION)
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    except ValueError as exc:
        conn.close()
        raise StoreError(str(exc)) from exc
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot use the identity store {path}: {describe_sqlite_error(exc)}") from exc
    except StoreError:
        conn.close()
        raise
    return ModelInfo(meta.get("model_name", "?"), meta.get("model_sha256", ""), int(meta.get("feature_dim", "0")),
                     meta.get("model_path", ""))
