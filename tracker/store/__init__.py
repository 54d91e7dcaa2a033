"""The identity store: identities, sightings and vectors that survive restarts (``--store PATH``).

``IdentityStore`` (``tracker.store.base``) is the seam the tracker, the viewer and ``mcreid-search``
speak to; ``open_store`` opens the SQLite implementation (``tracker.store.sqlite_store``);
``StoreRecorder`` (``tracker.store.recorder``) carries a pipeline's sightings into it.
"""

from tracker.store.base import (ForgetReport, IdentityStore, ModelInfo, ModelMismatch, RetentionReport, SearchHit,
                                Sighting, StoreBusy, StoredIdentity, StoreError, TrackSighting)
from tracker.store.sqlite_store import SqliteIdentityStore, open_store

__all__ = ["ForgetReport", "IdentityStore", "ModelInfo", "ModelMismatch", "RetentionReport", "SearchHit", "Sighting",
           "SqliteIdentityStore", "StoreBusy", "StoreError", "StoredIdentity", "TrackSighting", "open_store"]
