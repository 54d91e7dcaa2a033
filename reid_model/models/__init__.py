"""STA model and its backbones."""

from reid_model.models.sta import STA, ModelConfig, STAOutput, build_model, stripe_attention

__all__ = ["STA", "ModelConfig", "STAOutput", "build_model", "stripe_attention"]
