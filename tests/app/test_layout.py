"""The view grid and letterboxing (no Qt)."""

from __future__ import annotations

import pytest

from app.layout import MAX_CAMERAS, fit_rect, grid_positions, grid_shape


@pytest.mark.parametrize("n, shape", [(0, (1, 1)), (1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)),
                                      (5, (2, 3)), (6, (2, 3)), (7, (3, 3)), (8, (3, 3)), (9, (3, 3))])
def test_grid_shape_fits_every_camera(n, shape):
    assert grid_shape(n) == shape
    rows, cols = shape
    positions = grid_positions(n)
    assert len(set(positions)) == n
    assert all(0 <= r < rows and 0 <= c < cols for r, c in positions)


@pytest.mark.parametrize("n", [-1, MAX_CAMERAS + 1, 16])
def test_grid_shape_refuses_out_of_range(n):
    with pytest.raises(ValueError, match=f"0 to {MAX_CAMERAS} cameras, got {n}"):
        grid_shape(n)


@pytest.mark.parametrize("frame, area, rect", [
    ((1288, 728), (644, 728), (0, 182, 644, 364)),   # wide frame in a tall area: bars above and below
    ((1288, 728), (1000, 364), (178, 0, 644, 364)),  # in a wide area: bars left and right
    ((100, 50), (100, 50), (0, 0, 100, 50)),
    ((100, 50), (0, 50), (0, 0, 0, 0)),
])
def test_fit_rect_keeps_the_aspect_ratio(frame, area, rect):
    assert fit_rect(*frame, *area) == rect
