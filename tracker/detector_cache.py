"""The detector this machine runs by default, made once and cached.

``--detector auto`` (the default) picks, on a CPU with OpenVINO installed, the OpenVINO export of
the bundled YOLOv8n in ``AUTO_SPEC`` (the fastest that kept accuracy in
``benchmarks/detector_speed.py``, README "Detector": fp32 weights, dynamic input; on CPUs with AMX
OpenVINO computes it in bf16, and its int8 export was no faster there). The first run on a machine
builds it (about 5 s) into the cache, later runs load it.
Without OpenVINO, or on a GPU, the bundled ONNX runs on onnxruntime, and the log says so.

Cache: ``$MCREID_CACHE`` or ``$XDG_CACHE_HOME/mcreid`` or ``~/.cache/mcreid``, under ``detectors/``,
one folder per source file (by content hash), export spec and library versions. A build goes to a
temporary folder and is renamed into place when complete, under a file lock, so two runs starting
together build it once and a killed build leaves nothing half-made behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from export.detector_export import DetectorSpec

log = logging.getLogger(__name__)

AUTO = "auto"
BUNDLED = "bundled"
AUTO_SPEC = DetectorSpec("openvino", "fp32", 640, static=False)
# Its inference size: 17.7 vs 24.8 ms per lab frame at 640, PETS09 MOTA/IDF1 0.772/0.865 against the
# bundled detector's 0.769/0.859; 416 lost accuracy (0.757/0.793).
AUTO_IMGSZ = 512


def cache_root() -> Path:
    """Where made models are kept (see the module docstring)."""
    if os.environ.get("MCREID_CACHE"):
        return Path(os.environ["MCREID_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mcreid"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def cache_key(source: Path, spec: DetectorSpec) -> str:
    """A folder name that changes when the weights, the spec, Ultralytics or OpenVINO change."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    versions = f"ul{_version('ultralytics')}-ov{_version('openvino')}"
    return f"{source.stem}-{digest}-{spec.tag}-{versions}"


def cached_detector(source: str | Path, spec: DetectorSpec, root: Path | None = None) -> Path:
    """The export of ``source`` as ``spec`` from the cache, built first if it is not there."""
    import fcntl

    from export.detector_export import export_detector

    source = Path(source)
    folder = (root or cache_root()) / "detectors"
    final = folder / cache_key(source, spec)
    if final.exists():
        return _model_in(final)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it: wait, then use its result
        if final.exists():
            return _model_in(final)
        log.info("building the %s detector from %s into %s (once per machine)", spec.tag, source.name, final)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
        try:
            export_detector(spec, tmp, source)
            for leftover in tmp.glob("*.pt"):
                leftover.unlink()
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _model_in(final)


def _model_in(folder: Path) -> Path:
    models = sorted(p for p in folder.iterdir() if p.name.endswith("_openvino_model") or p.suffix in (".onnx", ".engine"))
    if not models:
        raise FileNotFoundError(f"the detector cache folder {folder} holds no model; delete it to rebuild")
    return models[0]


def openvino_ready() -> str | None:
    """None when OpenVINO (and NNCF, for int8) can be imported, else why not."""
    for module in ("openvino", "nncf") if AUTO_SPEC.precision == "int8" else ("openvino",):
        try:
            __import__(module)
        except ImportError as exc:
            return f"{module} is not installed ({exc})"
    return None


def auto_detector(device: str | None, source: str | Path) -> str:
    """The weights ``--detector auto`` runs on ``device`` (see the module docstring)."""
    if device not in (None, "cpu"):
        log.info("detector: the bundled ONNX %s on %s (OpenVINO exports are for CPUs)", Path(source).name, device)
        return str(source)
    why_not = openvino_ready()
    if why_not:
        log.warning("detector: %s; falling back to the bundled ONNX on onnxruntime (slower). "
                    "pip install openvino nncf", why_not)
        return str(source)
    try:
        return str(cached_detector(source, AUTO_SPEC))
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("detector: could not build the OpenVINO model (%s); using the bundled ONNX on onnxruntime",
                    " ".join(str(exc).split()))
        return str(source)
