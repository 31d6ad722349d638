from . import builtin  # noqa: F401  (registers cnn, vgg16, resnet18, deit_tiny)
from .registry import create_model, list_models, register_model
from .weights import load_weights

__all__ = ["create_model", "list_models", "load_weights", "register_model"]
