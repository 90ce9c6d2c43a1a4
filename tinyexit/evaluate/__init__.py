"""Evaluation of multi-exit models: anytime accuracy, budgeted-batch (dynamic) evaluation, real early exit,
curves compared over seeds."""

from .budgeted import (
    anytime_accuracy,
    assign_exits,
    confident_enough,
    default_qs,
    dynamic_evaluate,
    exit_shares,
    find_thresholds,
    take_most_confident,
)
from .compare import STD_DDOF, common_budgets, interpolate_curve, mean_std, paired_differences
from .early_exit import EarlyExitResult, early_exit_predict
from .predict import predict_probs
