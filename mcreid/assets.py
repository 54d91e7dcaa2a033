"""Find the real material (weights, videos, split files) without copying it into the repo.

Lookup order: the directory named by the ``MCREID_ASSETS`` environment variable, then
``../shared/data`` beside the checkout (the layout every developer and CI machine has).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MCREID_ASSETS"
_CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = _CHECKOUT.parent / "shared" / "data"


def assets_root() -> Path | None:
    """The assets directory, or None when neither the variable nor the default exists."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_ROOT if DEFAULT_ROOT.is_dir() else None


def find_asset(relative: str | Path) -> Path | None:
    """The asset at ``relative`` under the assets root, or None if it is not there."""
    root = assets_root()
    if root is None:
        return None
    path = root / relative
    return path if path.exists() else None


def asset_path(relative: str | Path, what: str, alternative: str = "") -> Path:
    """The asset at ``relative``; raises FileNotFoundError naming it, what it is and the fix.

    Args:
        relative: path inside the assets root, e.g. ``"weights/yolov8n_coco_int8.onnx"``.
        what: what the file is, for the message ("the COCO person detector (ONNX)").
        alternative: what the user can do instead ("pass --detector yolo11n.pt").
    """
    path = find_asset(relative)
    if path is not None:
        return path
    root = assets_root()
    looked = root / relative if root is not None else Path(relative)
    hint = f"; {alternative}" if alternative else ""
    raise FileNotFoundError(
        f"{what} not found: {looked}. Set {ENV_VAR} to the folder holding {relative} "
        f"(default: {DEFAULT_ROOT}; see shared/data/SOURCES.md for where each file comes from){hint}"
    )
