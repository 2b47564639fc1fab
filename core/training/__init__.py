"""Training: the loop (trainer.py), what it delegates (callbacks.py, ema.py, loggers.py), the step context
(step.py), augmentation for small data (augment.py), the batch order (batches.py) and several processes
(distributed.py). What a run directory holds (its options, checkpoints and files) is core/runs/."""
