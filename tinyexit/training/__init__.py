"""Training loops: the baseline objective (Eq. 3), checkpoints and the epoch loop."""

from .baseline import BaselineTrainer
from .checkpoint import CheckpointError, load_checkpoint, module_state, save_checkpoint
from .loop import DivergenceError, Progress, first_non_finite, train_epoch
