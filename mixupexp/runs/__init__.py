"""Stage 5, runs: what a run is (identity, status), where it lives, the plan of a command, locks, checkpoints, the sweep's end."""
