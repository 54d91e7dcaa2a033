"""Photos of a person into one query vector, with the store's re-ID model.

Each photo (a crop of one person, any size) is resized to the model's input and repeated into a
still clip of ``seq_len`` frames (a clip model sees a person standing still); the clips' raw
features are averaged, as a track's signature averages its clips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tracker.store.base import ModelInfo, ModelMismatch, StoreError

PHOTO_TYPES = ".jpg, .jpeg, .png, .bmp, .webp"


def read_photo(path: str | Path) -> np.ndarray:
    """A photo as ``(H, W, 3)`` uint8 BGR.

    Raises:
        FileNotFoundError: missing file; ValueError: not an image OpenCV can read.
    """
    import cv2

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"photo not found: {path}; expected an image ({PHOTO_TYPES}) of one person, "
                                "cropped to the person")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ValueError(f"cannot read {path} as an image; expected {PHOTO_TYPES}")
    return image


def embed_photos(embedder: Any, photos: Sequence[np.ndarray]) -> np.ndarray:
    """``(D,)`` float32: the mean raw feature of the photos (BGR), each embedded as a still clip."""
    from mcreid.crops import resize_rgb

    if not photos:
        raise ValueError("need at least one photo")
    seq_len = max(1, int(getattr(embedder, "seq_len", 1)))
    clips = np.stack([np.repeat(resize_rgb(p, embedder.input_size)[None], seq_len, axis=0) for p in photos])
    features = np.asarray(embedder.embed(clips), np.float32)
    return features.mean(axis=0)


def load_query_embedder(stored: ModelInfo, reid: str | None = None, reid_input: str | None = None) -> Any:
    """The re-ID embedder for a store: ``reid`` if given, else the model file the store recorded;
    it must be the same model (sha256) as the store's.

    Raises:
        StoreError: the recorded model file is gone, or the store was made without a model file.
        ModelMismatch: ``reid`` is another model.
    """
    from tracker.pipeline import build_embedder
    from tracker.store.session import model_info

    if not stored.sha256:
        raise StoreError(f"the store's vectors come from {stored.name}, an embedder without a model file; photos "
                         "cannot be embedded the same way here")
    if reid is None:
        if not stored.path or not Path(stored.path).is_file():
            raise StoreError(f"the store's re-ID model {stored.name} was at {stored.path or '?'}, which is missing; "
                             f"pass --reid PATH to the same model file (sha256 {stored.sha256[:12]})")
        reid = stored.path
    embedder = build_embedder(reid, reid_input)
    given = model_info(embedder)
    if not given.same_model(stored):
        raise ModelMismatch(f"--reid {reid} is {given.name} (sha256 {given.sha256[:12]}, {given.feature_dim}-d), but "
                            f"the store's vectors were made with {stored.name} (sha256 {stored.sha256[:12]}, "
                            f"{stored.feature_dim}-d); vectors of two models cannot be compared")
    return embedder
