"""Stage 4, training: one run built, restored, trained epoch by epoch and finished; the step, the optimizer, the metrics."""
