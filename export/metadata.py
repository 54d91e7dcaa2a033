"""What an mcreid STA export says about itself, stored as ONNX ``metadata_props``.

Plain Python on purpose: the exporter writes it (with onnx) and the runtime reads it (with
onnxruntime's ``custom_metadata_map``), and neither side needs the other's libraries.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Mapping

# Every key is stored under this prefix so that tools adding their own props cannot collide.
PREFIX = "mcreid."
IMAGENET_NORMALIZATION = "x / 255, minus mean (0.485, 0.456, 0.406), over std (0.229, 0.224, 0.225)"
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ExportMetadata:
    """The facts a runtime needs about an exported STA model.

    Attributes:
        model_name: e.g. "sta-resnet50".
        input_height, input_width: crop size every frame must have.
        seq_len: frames per clip the model was trained and exported with.
        feature_dim: length of ``raw_feature`` and ``bn_feature``.
        channel_order: "RGB" (crops are converted from OpenCV's BGR before embedding).
        input_layout: "NTHWC" uint8; cast, normalisation and layout change are in the graph.
        normalization: what the graph does to the uint8 pixels.
        precision: "fp32", "fp16" or "int8".
        quantization: "", "dynamic" or "static" (int8 only).
        checkpoint_sha256: sha256 of the source checkpoint file.
        exporter: tool and library versions that wrote the file.
    """

    model_name: str
    input_height: int
    input_width: int
    seq_len: int
    feature_dim: int
    channel_order: str = "RGB"
    input_layout: str = "NTHWC"
    input_dtype: str = "uint8"
    normalization: str = IMAGENET_NORMALIZATION
    precision: str = "fp32"
    quantization: str = ""
    checkpoint_sha256: str = ""
    exporter: str = ""

    def __post_init__(self) -> None:
        for name in ("input_height", "input_width", "seq_len", "feature_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def to_props(self) -> dict[str, str]:
        """``{"mcreid.<field>": str(value)}`` for ``onnx.helper.set_model_props``."""
        return {PREFIX + key: str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> ExportMetadata:
        """Read back what :meth:`to_props` wrote; ValueError naming ``source`` and missing keys."""
        values: dict[str, object] = {}
        missing = []
        for field in fields(cls):
            key = PREFIX + field.name
            if key not in props:
                if field.default is MISSING:  # a required field
                    missing.append(key)
                continue
            values[field.name] = int(props[key]) if field.type == "int" else props[key]
        if missing:
            raise ValueError(
                f"{source} lacks the mcreid metadata {missing}; it was not written by mcreid-export "
                "(for a per-image re-ID model use OnnxImageEmbedder)"
            )
        return cls(**values)  # type: ignore[arg-type]
