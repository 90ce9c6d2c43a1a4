"""L2W: the weight prediction network, meta-data allocation and the bilevel training step."""
from .allocation import allocate, exit_shares
from .losses import allocated_loss, loss_matrix, weighted_loss
from .trainer import L2WTrainer, confidences
from .wpn import WeightPredictionNet
