"""Floor 5, tracking: the loggers (CSV, TensorBoard, MLflow, W&B); they record runs and never change what a run
computes."""
