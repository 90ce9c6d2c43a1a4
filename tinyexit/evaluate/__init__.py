"""Evaluation of multi-exit models: anytime accuracy and budgeted-batch (dynamic) evaluation."""
from .budgeted import anytime_accuracy, assign_exits, default_qs, dynamic_evaluate, exit_shares, find_thresholds
from .predict import predict_probs
