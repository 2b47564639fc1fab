"""Training: the loop (trainer.py), what it delegates (callbacks.py, ema.py), its options (config.py), the batch
order (batches.py), several processes (distributed.py), checkpoints (checkpoint.py) and the run directory
(run_dir.py, the one owner of config.json and metrics.jsonl)."""
