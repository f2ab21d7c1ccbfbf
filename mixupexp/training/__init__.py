"""Floor 6, training: one run's config checked, the run built, restored, trained epoch by epoch and finished; the
step, the optimizer, the metrics, the calibration of a machine's speed."""
