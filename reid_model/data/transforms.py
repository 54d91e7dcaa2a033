"""Frame decoding and the one-draw-per-clip training augmentation.

Decoding gives uint8 RGB ``(T, H, W, 3)`` frames resized to the model's input size, the same
format the tracker's crops and every ``Embedder`` take. Training clips are then padded, randomly
cropped and flipped with ONE parameter draw for all frames (torchvision's v2 transforms treat the
leading dimension of a ``(T, 3, H, W)`` tensor as a batch sharing the parameters), and normalised
with the ImageNet constants the inference path uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2

from reid_model.preprocess import IMAGENET_MEAN, IMAGENET_STD


def read_frame(path: Path, height: int, width: int) -> np.ndarray:
    """Decode one image to uint8 RGB ``(height, width, 3)`` (bilinear resize when its size differs).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a decodable image (corrupt, truncated, empty); names the file.
    """
    rgb = read_image(path)
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    return rgb


def read_image(path: Path) -> np.ndarray:
    """Decode one image to uint8 RGB ``(H, W, 3)`` at its own size (errors as ``read_frame``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame image not found: {path}")
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    # ImportError: once ultralytics is imported it patches Image.open to retry unknown formats with
    # pi-heif, which raises ModuleNotFoundError when that optional package is absent.
    except (UnidentifiedImageError, OSError, ValueError, ImportError) as exc:
        raise ValueError(f"cannot decode frame image {path} (corrupt or not an image): {exc}") from exc
    return rgb


def read_frames(paths: Sequence[Path], height: int, width: int) -> np.ndarray:
    """Decode ``paths`` in order to uint8 RGB ``(len(paths), height, width, 3)``; each file decoded once."""
    decoded: dict[Path, np.ndarray] = {}
    out = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        frame = decoded.get(path)
        if frame is None:
            frame = decoded[path] = read_frame(path, height, width)
        out[i] = frame
    return out


class ClipAugment:
    """Pad + random crop + horizontal flip (one draw per clip), ImageNet normalisation, random erasing.

    Args:
        height, width: the clip's (already resized) frame size, kept by the crop.
        pad: zero padding on every side before the random crop (10 px as in torchreid/STA).
        flip_prob: probability of a horizontal flip.
        erasing_prob: probability of erasing one random rectangle (2-40% of the frame, the same on
            every frame of the clip) to the mean pixel, as in the "bag of tricks" re-ID baseline;
            0 (off) by default.
    """

    def __init__(self, height: int, width: int, pad: int = 10, flip_prob: float = 0.5,
                 erasing_prob: float = 0.0) -> None:
        if pad < 0 or not 0.0 <= flip_prob <= 1.0 or not 0.0 <= erasing_prob <= 1.0:
            raise ValueError(f"need pad >= 0 and flip/erasing probabilities in [0, 1], got pad={pad}, "
                             f"flip_prob={flip_prob}, erasing_prob={erasing_prob}")
        self.height, self.width = height, width
        self._random = v2.Compose([v2.RandomCrop((height, width), padding=pad), v2.RandomHorizontalFlip(flip_prob)])
        self._normalise = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        self._erase = v2.RandomErasing(erasing_prob, scale=(0.02, 0.4), value=0.0) if erasing_prob > 0 else None

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """uint8 ``(T, 3, H, W)`` -> float32 ``(T, 3, H, W)`` normalised, same crop/flip on every frame.

        The torchvision draw runs on a forked torch RNG seeded from ``rng``, so the result depends
        on ``rng`` only (deterministic per seed, independent of the process-global torch state).
        """
        if clip.dim() != 4 or clip.shape[1] != 3 or tuple(clip.shape[2:]) != (self.height, self.width):
            raise ValueError(
                f"clip must be (T, 3, {self.height}, {self.width}) uint8, got shape {tuple(clip.shape)}"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            clip = self._normalise(self._random(clip))
            return clip if self._erase is None else self._erase(clip)
