"""Evaluation of multi-exit models: anytime accuracy, budgeted-batch (dynamic) evaluation, real early exit."""
from .budgeted import (anytime_accuracy, assign_exits, confident_enough, default_qs, dynamic_evaluate, exit_shares,
                       find_thresholds)
from .early_exit import EarlyExitResult, early_exit_predict
from .predict import predict_probs
