"""The store's SQLite schema, its version (``PRAGMA user_version``) and the migrations between versions.

Version 1 was the first layout: thumbnails inside the ``sightings`` rows and no record of forgotten
ids. Version 2 moves thumbnails to a table of their own (listing a person's history no longer reads
every image; a thumbnail is replaced without rewriting its sighting) and adds ``forgotten``, so a
running tracker never writes back a person erased while it runs. ``migrate`` brings any older file
up to ``SCHEMA_VERSION`` in one transaction; a newer file is refused.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 2

_COMMON = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,           -- wall clock, Unix seconds
    ended_at REAL,                      -- NULL while running, or when the run was killed
    sources TEXT NOT NULL,              -- JSON {camera_id: source}
    host TEXT NOT NULL,
    pid INTEGER NOT NULL
);
CREATE TABLE identities (
    global_id INTEGER PRIMARY KEY,
    clip_count INTEGER NOT NULL,
    first_seen_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    signature BLOB NOT NULL,            -- float32 (D,): clip-weighted mean of its sightings' signatures
    updated_seq INTEGER NOT NULL        -- the write that last changed it (readers refresh from it)
);
CREATE INDEX identities_updated ON identities (updated_seq);
"""

_SIGHTINGS = """
CREATE TABLE sightings (
    sighting_id INTEGER PRIMARY KEY,
    global_id INTEGER NOT NULL REFERENCES identities (global_id) ON DELETE CASCADE,
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    camera_id TEXT NOT NULL,
    source TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    first_frame INTEGER NOT NULL,
    last_frame INTEGER NOT NULL,
    first_time_s REAL NOT NULL,         -- seconds into the source
    last_time_s REAL NOT NULL,
    started_at REAL NOT NULL,           -- wall clock, Unix seconds
    ended_at REAL NOT NULL,
    clip_count INTEGER NOT NULL,
    signature BLOB NOT NULL,            -- float32 (D,): the track's mean raw feature
    ended INTEGER NOT NULL DEFAULT 0,   -- 0 while the track was live at the last commit
    {thumbnail}
    UNIQUE (run_id, camera_id, track_id)
);
CREATE INDEX sightings_identity ON sightings (global_id, started_at);
CREATE INDEX sightings_ended_at ON sightings (ended_at);
"""

SCHEMA_V1 = _COMMON + _SIGHTINGS.format(thumbnail="thumbnail BLOB,")

SCHEMA_V2 = _COMMON + _SIGHTINGS.format(thumbnail="") + """
CREATE TABLE thumbnails (
    sighting_id INTEGER PRIMARY KEY REFERENCES sightings (sighting_id) ON DELETE CASCADE,
    score REAL NOT NULL,
    jpeg BLOB NOT NULL
);
CREATE TABLE forgotten (global_id INTEGER PRIMARY KEY, forgotten_at REAL NOT NULL);
"""

# version -> statements that take a file from that version to the next
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE thumbnails (
    sighting_id INTEGER PRIMARY KEY REFERENCES sightings (sighting_id) ON DELETE CASCADE,
    score REAL NOT NULL,
    jpeg BLOB NOT NULL
);
INSERT INTO thumbnails (sighting_id, score, jpeg)
    SELECT sighting_id, 0.0, thumbnail FROM sightings WHERE thumbnail IS NOT NULL;
ALTER TABLE sightings DROP COLUMN thumbnail;
CREATE TABLE forgotten (global_id INTEGER PRIMARY KEY, forgotten_at REAL NOT NULL);
""",
}


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def create(conn: sqlite3.Connection) -> None:
    """Create the current schema in an empty database (inside the caller's transaction: statements
    one by one, since ``executescript`` would commit)."""
    for statement in _statements(SCHEMA_V2):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the file up to ``SCHEMA_VERSION`` (inside the caller's transaction); returns the
    version it had.

    Raises:
        ValueError: the file is newer than this mcreid, or has a version with no migration.
    """
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise ValueError(f"identity store {path} has schema version {found}; this mcreid reads versions up to "
                         f"{SCHEMA_VERSION}: upgrade mcreid to use it")
    for version in range(found, SCHEMA_VERSION):
        if version not in MIGRATIONS:
            raise ValueError(f"identity store {path} has schema version {found}, which this mcreid cannot "
                             f"migrate (no step from {version})")
        for statement in _statements(MIGRATIONS[version]):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    return found


def _statements(script: str) -> list[str]:
    """Split a script of plain DDL/DML statements (no triggers, no ';' inside literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
