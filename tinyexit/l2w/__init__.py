"""L2W: the weight prediction network, meta-data allocation and the bilevel training step."""

from .allocation import allocate, exit_shares
from .losses import allocated_loss, weighted_loss
from .trainer import META_OBJECTIVES, WEIGHTINGS, L2WTrainer
from .wpn import WPN_INPUTS, WeightPredictionNet
