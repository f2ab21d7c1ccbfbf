"""Loggers (TensorBoard, MLflow, W&B): they record runs and never change what a run computes."""
