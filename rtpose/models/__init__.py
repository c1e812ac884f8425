"""Network definitions (PyTorch) and the model zoo.

``create_model(name, weights=None)`` builds a zoo network and loads a checkpoint through its key
map; ``list_models()`` names the entries and ``get_model_info(name)`` gives their typed facts.
The zoo and these functions import torch only when a network is built.
"""

from rtpose.models.factory import create_model, identify_checkpoint
from rtpose.models.zoo import CodecSpec, ModelInfo, Normalisation, get_model_info, list_models

__all__ = [
    "CodecSpec",
    "ModelInfo",
    "Normalisation",
    "create_model",
    "get_model_info",
    "identify_checkpoint",
    "list_models",
]
