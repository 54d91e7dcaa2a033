"""A tiny ``mars_dap`` folder whose ranks and APs are known by hand.

Every tracklet is a strip of 8 uniformly coloured 56x120 frames. Its colour encodes an angle
``theta = 0.25 * x`` as RGB ``(200 cos theta, 200 sin theta, 0)``, so an image model that outputs
the mean (R, G) of a frame gives, after L2 normalisation, the unit vector at that angle: cosine
distance between two tracklets grows with ``|x_a - x_b|``.

Identities (pid, camera, x):
    pid 1: t0 (cam 1, x 0.0, QUERY, shown t2), t1 (cam 1, x 0.4: same camera -> ignored),
           t2 (cam 0, x 1.2: shown -> true match), t3 (cam 2, x 2.4: known other camera -> true match)
    pid 2: t4 (cam 3, x 5.0, QUERY, shown t5), t5 (cam 0, x 5.8: shown -> true match),
           t6 (cam 0, x 5.2: unknown camera, not shown -> ignored)
    pid 3: t7 (cam 1, x 0.8), t8 (cam 2, x 2.0)
    pid 4, 5, 6: one tracklet each far away (x 3.2, 4.0, 6.2... see XS), for the identity split.

Query t0 ranks t1 (ignored), t7 (negative), t2 (hit), t8 (negative), t3 (hit): true matches at
ranks 2 and 4 -> first rank 2, AP (1/2 + 2/4) / 2 = 0.5. Query t4 ranks t6 (ignored), t5 (hit)
-> rank 1, AP 1. So rank-1 50, rank-5 100, mAP 75 (percent).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

# name: (pid, camera, x)
TRACKLETS = {
    "t00000": (1, 1, 0.0), "t00001": (1, 1, 0.4), "t00002": (1, 0, 1.2), "t00003": (1, 2, 2.4),
    "t00004": (2, 3, 5.0), "t00005": (2, 0, 5.8), "t00006": (2, 0, 5.2),
    "t00007": (3, 1, 0.8), "t00008": (3, 2, 2.0),
    "t00009": (4, 1, 3.2), "t00010": (5, 2, 4.0), "t00011": (6, 4, 6.2),
}
QUERIES = {"t00000": "t00002", "t00004": "t00005"}
EXPECTED = {"rank1": 50.0, "rank5": 100.0, "rank20": 100.0, "mAP": 75.0, "num_queries": 2}
FRAME_W, FRAME_H, FRAMES = 56, 120, 8


def colour(x: float) -> tuple[int, int, int]:
    theta = 0.25 * x
    return round(200 * math.cos(theta)), round(200 * math.sin(theta)), 0


def write_mars_dap(root: Path, frame_colours: dict[str, list[tuple[int, int, int]]] | None = None) -> Path:
    """Write the folder under ``root``; ``frame_colours`` overrides the 8 frame colours of a tracklet."""
    (root / "tracklets").mkdir(parents=True, exist_ok=True)
    rows = ["tracklet,pid,camera,frames"]
    for name, (pid, camera, x) in TRACKLETS.items():
        colours = (frame_colours or {}).get(name, [colour(x)] * FRAMES)
        strip = np.concatenate([np.full((FRAME_H, FRAME_W, 3), c, np.uint8) for c in colours], axis=1)
        Image.fromarray(strip).save(root / "tracklets" / f"{name}.jpg", quality=95)
        rows.append(f"{name},{pid:04d},{camera},{FRAMES}")
    (root / "tracklets.csv").write_text("\n".join(rows) + "\n")
    queries = ["query,pid,camera,mars_name,shown_matches"]
    for name, shown in QUERIES.items():
        pid, camera, _ = TRACKLETS[name]
        queries.append(f"{name},{pid:04d},{camera},{pid:04d}C{camera}T0001,{shown}")
    (root / "queries.csv").write_text("\n".join(queries) + "\n")
    return root


def hand_features() -> np.ndarray:
    """``(12, 2)`` unit vectors at each tracklet's angle, rows in ``TRACKLETS`` order."""
    theta = 0.25 * np.array([x for _, _, x in TRACKLETS.values()])
    return np.stack([np.cos(theta), np.sin(theta)], axis=1).astype(np.float32)
