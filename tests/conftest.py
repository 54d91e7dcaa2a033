"""Shared fixtures: the real material in ../shared/data, found through the asset lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcreid.assets import assets_root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real material folder; skipped (with the reason) only where it is absent."""
    root = assets_root()
    if root is None or not root.is_dir():
        pytest.skip("real material not found: set MCREID_ASSETS or place shared/data beside the checkout")
    return root
