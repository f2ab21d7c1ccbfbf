"""Floor 3, the augmentation: the study's per-sample mixup in the loader, the batch-level methods, manifold mixup's
plan."""
