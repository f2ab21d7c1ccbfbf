"""Floor 8, runs and sweeps: the plan and dry run of a command, the fixed, sequential and tuning sweeps with their
records and summaries, the sweep's end, SLURM; the commands on top call them."""
