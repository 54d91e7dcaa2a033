"""What an ONNX file looks like, and checks that it is the kind of model it was given as.

A detector given as the re-ID model (or the other way round) used to be accepted and then fail at
the first frame with a raw onnxruntime traceback. These checks run when a model loads and raise
one ``ValueError`` that names the file, what it looks like (its inputs, outputs and guessed kind)
and what was expected. onnxruntime + numpy only, never torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from export.runtime import import_onnxruntime

# Input element types the image embedder can feed (it builds float32 and casts).
FLOAT_INPUTS = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
REID_EXPECTED = ("expected a person re-ID model: an STA clip export from mcreid-export, or a per-image model "
                 "with input [B or 1, 3, H, W] and output (B, D) features")
DETECTOR_EXPECTED = ("expected an Ultralytics YOLO detect model: input [1 or B, 3, H, W] and one output "
                     "[1, 4 + classes, anchors] such as yolov8n's [1, 84, 8400]")


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output: name, shape (ints, or names/None for dynamic axes), element type."""

    name: str
    shape: tuple[Any, ...]
    type: str

    def __str__(self) -> str:
        dims = ", ".join(str(d) if d is not None else "?" for d in self.shape)
        return f"{self.name} [{dims}]"


@dataclass(frozen=True)
class OnnxSignature:
    """The inputs, outputs and metadata props of an ONNX model, as onnxruntime reports them."""

    path: Path
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_session(cls, session: Any, path: str | Path) -> OnnxSignature:
        def infos(args: Any) -> tuple[TensorInfo, ...]:
            return tuple(TensorInfo(a.name, tuple(a.shape or ()), a.type) for a in args)

        meta = dict(session.get_modelmeta().custom_metadata_map)
        return cls(Path(path), infos(session.get_inputs()), infos(session.get_outputs()), meta)

    def describe(self) -> str:
        """``"input images [1, 3, 640, 640] -> output output0 [1, 84, 8400]"``."""
        ins = ", ".join(str(t) for t in self.inputs) or "none"
        outs = ", ".join(str(t) for t in self.outputs) or "none"
        return f"input {ins} -> output {outs}"

    @property
    def ultralytics_task(self) -> str | None:
        """The ``task`` prop Ultralytics writes into its exports ("detect", "segment"...), if any."""
        return self.metadata.get("task")

    def kind(self) -> str:
        """A guess at what the model is, for messages ("a YOLO-style detector", ...)."""
        task = self.ultralytics_task
        if task:
            return f"an Ultralytics {task} model"
        if any(key.startswith("mcreid.") and key != "mcreid.input_format" for key in self.metadata):
            return "an mcreid STA clip export"
        if not self.inputs or not self.outputs:
            return "a model without inputs or outputs"
        first_in, first_out = self.inputs[0], self.outputs[0]
        if len(first_in.shape) == 5:
            return "a clip model (5-D input)"
        if len(first_in.shape) != 4:
            return f"a model with a {len(first_in.shape)}-D input (not images)"
        if len(first_out.shape) == 3:
            return "a YOLO-style detector (3-D output)"
        if len(first_out.shape) == 2 or _squeezable(first_out.shape):
            return "an image embedding or classification model"
        return f"an image model with a {len(first_out.shape)}-D output"


def _squeezable(shape: tuple[Any, ...]) -> bool:
    """``(N, D, 1, 1)`` (a pooled feature map); dynamic trailing axes count as 1."""
    return len(shape) == 4 and all(d == 1 or not isinstance(d, int) for d in shape[2:])


def inspect_onnx(path: str | Path, what: str = "ONNX model") -> OnnxSignature:
    """The signature of the ``.onnx`` file at ``path`` (a CPU session, nothing run).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: onnxruntime cannot load it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} (expected an .onnx file)")
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ValueError(f"{what} {path}: onnxruntime cannot load it ({exc}); expected an .onnx file") from exc
    return OnnxSignature.from_session(session, path)


def _wrong_kind(sig: OnnxSignature, given_as: str, expected: str, why: str, hint: str = "") -> ValueError:
    """One line: the file, what it looks like, what is wrong, what was expected (and a hint)."""
    return ValueError(f"{sig.path} cannot be {given_as}: it looks like {sig.kind()} ({sig.describe()}) and "
                      f"{why}; {expected}{hint}")


@dataclass(frozen=True)
class ImageModelSpec:
    """What a per-image re-ID model takes: its fixed batch (None = any), input ``(H, W)`` dims
    (ints, or names/None where dynamic), and the numpy dtype to feed."""

    batch: int | None
    size_dims: tuple[Any, Any]
    dtype: type


def check_image_reid(sig: OnnxSignature, given_as: str = "the re-ID model") -> ImageModelSpec:
    """Check a per-image re-ID model's declared input ``[B or 1, 3, H, W]`` float and output.

    Raises:
        ValueError: the file is another kind of model (a detector, a clip model...), naming it.
    """
    task = sig.ultralytics_task
    if task:
        raise _wrong_kind(sig, given_as, REID_EXPECTED, f"its metadata says Ultralytics task {task!r}",
                          " (a YOLO detector goes to --detector)" if task == "detect" else "")
    if len(sig.inputs) != 1 or not sig.outputs:
        raise _wrong_kind(sig, given_as, REID_EXPECTED,
                          f"it has {len(sig.inputs)} inputs and {len(sig.outputs)} outputs, not one image input")
    inp, out = sig.inputs[0], sig.outputs[0]
    if len(inp.shape) != 4 or inp.shape[1] not in (3, "3"):
        raise _wrong_kind(sig, given_as, REID_EXPECTED, f"its input is {inp}, not [B, 3, H, W]")
    if inp.type not in FLOAT_INPUTS:
        raise _wrong_kind(sig, given_as, REID_EXPECTED,
                          f"its input is {inp.type}; per-image models must take float or float16 pixels")
    if out.shape and len(out.shape) != 2 and not _squeezable(out.shape):
        raise _wrong_kind(sig, given_as, REID_EXPECTED, f"its output is {out}, not (B, D) features",
                          " (a YOLO detector goes to --detector)" if len(out.shape) == 3 else "")
    batch = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    return ImageModelSpec(batch, (inp.shape[2], inp.shape[3]), FLOAT_INPUTS[inp.type])


def check_features(sig: OnnxSignature, features: np.ndarray, batch: int, given_as: str = "the re-ID model") -> int:
    """Check the output of a dummy batch of ``batch`` images: ``(batch, D)`` or ``(batch, D, 1, 1)``.

    Returns:
        D, the feature length.
    """
    shape = tuple(features.shape)
    ok = len(shape) == 2 or (len(shape) == 4 and shape[2:] == (1, 1))
    if not ok or shape[0] != batch or shape[1] < 1:
        raise _wrong_kind(sig, given_as, REID_EXPECTED,
                          f"{batch} dummy images gave an output of shape {shape}, not ({batch}, D)")
    return int(shape[1])


def check_detector(sig: OnnxSignature, imgsz: int | None = None, given_as: str = "the detector") -> None:
    """Check an ONNX detector before Ultralytics loads it: input ``[B, 3, H, W]``, a 3-D first output.

    Args:
        sig: from :func:`inspect_onnx`.
        imgsz: the detector input size asked for; a model without Ultralytics metadata and a static
            input of another size is refused (Ultralytics reads the size only from its metadata).

    Raises:
        ValueError: the file is another kind of model (e.g. a re-ID model with output (N, 512)).
    """
    task = sig.ultralytics_task
    if task and task != "detect":
        raise _wrong_kind(sig, given_as, DETECTOR_EXPECTED,
                          f"its metadata says Ultralytics task {task!r}; the tracker needs a 'detect' model")
    if not sig.inputs or not sig.outputs:
        raise _wrong_kind(sig, given_as, DETECTOR_EXPECTED, "it has no inputs or no outputs")
    inp, out = sig.inputs[0], sig.outputs[0]
    if len(inp.shape) != 4 or inp.shape[1] not in (3, "3"):
        raise _wrong_kind(sig, given_as, DETECTOR_EXPECTED, f"its input is {inp}, not [B, 3, H, W]")
    if len(out.shape) != 3:
        hint = " (a re-ID model goes to --reid)" if len(out.shape) == 2 or _squeezable(out.shape) else ""
        raise _wrong_kind(sig, given_as, DETECTOR_EXPECTED, f"its output is {out}, not [1, 4 + classes, anchors]",
                          hint)
    size = inp.shape[2:]
    if imgsz is not None and task is None and all(isinstance(d, int) for d in size) and tuple(size) != (imgsz, imgsz):
        raise ValueError(f"{sig.path} takes {size[0]}x{size[1]} images and has no Ultralytics metadata to say so; "
                         f"pass --imgsz {size[0]}" + ("" if size[0] == size[1] else " (or re-export it square)"))
