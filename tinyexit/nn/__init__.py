"""Neural-network building blocks, as ``torch.nn``."""

from . import functional, init
from .containers import ModuleList, Sequential
from .functional_call import functional_call
from .layers import AvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear, MaxPool2d, ReLU
from .module import Module, Parameter
