"""Training metrics to ``metrics.csv`` and TensorBoard (imported lazily, optional)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

CSV_FIELDS = (
    "step", "epoch", "kind", "lr", "total", "cross_entropy", "triplet", "accuracy", "triplet_active", "circle",
    "rank1", "rank5", "rank20", "mAP",
)


class MetricsWriter:
    """Appends one CSV row per logged step and mirrors the numbers to TensorBoard.

    On resume (``resume_step`` given) rows written after the checkpoint's step are dropped, so a
    run that was killed and resumed leaves the same CSV as one that never stopped.

    Args:
        out: the run folder; writes ``out/metrics.csv`` and ``out/tensorboard/``.
        resume_step: the step of the checkpoint resumed from, or None for a fresh run.
        tensorboard: False to skip TensorBoard (it is also skipped, with a warning, when missing).
    """

    def __init__(self, out: Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = Path(out) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = self._kept_rows(resume_step) if resume_step is not None else []
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self._tb = _summary_writer(Path(out) / "tensorboard", resume_step) if tensorboard else None

    def _kept_rows(self, resume_step: int) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as f:
            return [row for row in csv.DictReader(f) if int(row["step"]) <= resume_step]

    def log(self, step: int, epoch: int, kind: str, values: dict[str, float]) -> None:
        """Write ``values`` (keys from CSV_FIELDS) for ``step``; ``kind`` is "train" or "eval"."""
        row = {"step": step, "epoch": epoch, "kind": kind}
        row.update({k: f"{v:.6g}" for k, v in values.items() if k in CSV_FIELDS})
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=CSV_FIELDS).writerow(row)
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _summary_writer(folder: Path, resume_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # tensorboard is in the [torch] extra
        logger.warning("TensorBoard logging off (%s); pip install -e '.[torch]' to enable it", exc)
        return None
    # purge_step hides events a killed run wrote after its last checkpoint.
    return SummaryWriter(str(folder), purge_step=resume_step + 1 if resume_step is not None else None)
