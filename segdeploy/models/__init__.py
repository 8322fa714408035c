"""Model families (U-Net, Swin-Seg), the registry and checkpoints. Imports torch."""

from segdeploy.models.registry import create_model, list_models, model_config

__all__ = ["create_model", "list_models", "model_config"]
