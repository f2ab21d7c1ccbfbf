"""`hydra/sweeper=sequential`: mixupexp's sequential sweeper, found by Hydra's plugin scan (the rounds:
mixupexp/runs/sequential_sweep.py)."""
