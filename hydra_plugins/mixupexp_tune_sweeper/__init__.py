"""`hydra/sweeper=tune`: mixupexp's tuning sweeper, found by Hydra's plugin scan (the trials:
mixupexp/runs/tune_sweep.py)."""
