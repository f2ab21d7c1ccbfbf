"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher with a wait that a cancelled job cannot hold for ever
(the wait: mixupexp/runs/slurm_jobs.py)."""
