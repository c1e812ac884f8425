"""Network definitions (PyTorch) and the model zoo.

The zoo (:mod:`rtpose.models.zoo`) needs no torch; the network modules do.
"""

from rtpose.models.zoo import ModelInfo, get_model_info, list_models

__all__ = ["ModelInfo", "get_model_info", "list_models"]
