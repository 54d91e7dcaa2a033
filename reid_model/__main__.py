"""``python -m reid_model train ...`` and ``torchrun --nproc_per_node=N -m reid_model train ...``."""

from __future__ import annotations

from reid_model.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
