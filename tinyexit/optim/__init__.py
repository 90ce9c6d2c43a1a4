"""Optimisers and learning-rate schedules, as ``torch.optim``."""

from .adam import Adam
from .optimizer import Optimizer
from .schedule import CosineAnnealingLR
from .sgd import SGD
