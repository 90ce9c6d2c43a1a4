"""Functional operations with PyTorch's names and signatures (``tinyexit.nn.functional``)."""
from ..ops import cat, cross_entropy, log_softmax, relu, sigmoid, softmax, tanh

__all__ = ["cat", "cross_entropy", "log_softmax", "relu", "sigmoid", "softmax", "tanh"]
