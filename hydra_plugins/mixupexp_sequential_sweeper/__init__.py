"""`hydra/sweeper=sequential`: mixupexp's sequential sweeper, found by Hydra's plugin discovery (runs/sequential_sweep.py)."""
