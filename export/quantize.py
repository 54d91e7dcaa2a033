"""fp16 and int8 versions of an fp32 STA export, with onnxruntime's own tools (no torch).

- fp16 (for GPUs): ``onnxruntime.transformers.float16.convert_float_to_float16`` with the uint8
  input and float32 outputs kept, so callers see the same interface.
- int8 dynamic: ``quantize_dynamic`` (weights int8, activations quantized per batch at run time).
- int8 static: ``quantize_static`` in QDQ format, per-channel int8 weights and uint8 activations
  calibrated on real clips. Only Conv, MatMul and Gemm are quantized: the attention of Eq. 1-4
  (squares, sums, divisions) and the BatchNorm stay float, as they are cheap and sensitive.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

logger = logging.getLogger(__name__)

QUANTIZED_OPS = ["Conv", "MatMul", "Gemm"]
QUANTIZATIONS = ("dynamic", "static")


def _quantization_module():
    try:
        from onnxruntime import quantization
    except ImportError as exc:
        raise ImportError("int8 export needs onnxruntime: pip install -e '.[onnx]'") from exc
    return quantization


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization logs a line per tensor on the root logger at INFO; hold it at WARNING."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def to_fp16(src: str | Path, dst: str | Path) -> None:
    """Write an fp16 copy of ``src`` at ``dst``; input and outputs keep their types."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


def _calibration_reader(input_name: str, clips: np.ndarray, batch: int):
    quantization = _quantization_module()

    class ClipReader(quantization.CalibrationDataReader):
        """Feeds uint8 clips ``(N, T, H, W, 3)`` to the calibrator, ``batch`` at a time."""

        def __init__(self) -> None:
            self._batches: Iterator[np.ndarray] = (clips[i : i + batch] for i in range(0, len(clips), batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self._batches, None)
            return None if chunk is None else {input_name: np.ascontiguousarray(chunk)}

    return ClipReader()


def quantize_int8(src: str | Path, dst: str | Path, calibration: np.ndarray | None = None,
                  input_name: str = "clips", per_channel: bool = True) -> str:
    """Write an int8 version of the fp32 model ``src`` at ``dst``.

    Args:
        src, dst: fp32 input model and int8 output path.
        calibration: uint8 clips ``(N, T, H, W, 3)`` for static quantization; None for dynamic.
        input_name: the model's input.
        per_channel: per-output-channel weight scales (static only; keeps ResNet accuracy).

    Returns:
        "static" or "dynamic": what was done.
    """
    quantization = _quantization_module()
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="mcreid_quant_") as tmp, _quiet_root_logger():
        # The recommended pre-pass: shape inference plus graph optimisation before quantizing.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared))
        if calibration is None:
            quantization.quantize_dynamic(
                str(prepared), str(dst), weight_type=quantization.QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS
            )
            return "dynamic"
        if calibration.ndim != 5 or calibration.dtype != np.uint8 or not len(calibration):
            raise ValueError(f"calibration clips must be non-empty uint8 (N, T, H, W, 3), got {calibration.dtype} {calibration.shape}")
        logger.info("calibrating int8 on %d clips", len(calibration))
        quantization.quantize_static(
            str(prepared), str(dst), _calibration_reader(input_name, calibration, batch=4),
            quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=QUANTIZED_OPS,
            calibrate_method=quantization.CalibrationMethod.MinMax,
        )
        return "static"
