"""The trainer's callbacks: a callback written here (counting steps, stopping early) works without touching
trainer.py, and its state survives kill -9 and --resume."""

import json
import signal
import subprocess
import sys
import time

from helpers import sample_plugin

from genforge.core.training import checkpoint as ckpt
from genforge.core.training.callbacks import Callback
from genforge.core.training.trainer import Trainer


def counter_class(tmp_path):
    (tmp_path / "counter.py").write_text(sample_plugin("count_steps"))
    sys.path.insert(0, str(tmp_path))
    try:
        import counter
    finally:
        sys.path.remove(str(tmp_path))
    return counter.CountSteps


def test_a_callback_counts_and_stops_training_early(tmp_path, small_config):
    CountSteps = counter_class(tmp_path)
    counter = CountSteps(stop_at=3)
    trainer = Trainer(small_config(steps=10, checkpoint_every=2), tmp_path / "run", progress=False,
                      callbacks=[counter])
    trainer.fit()
    assert trainer.step == 3 and counter.seen == 3 and trainer.stop_reason.startswith("CountSteps")
    last = ckpt.read_checkpoint(ckpt.step_checkpoints(tmp_path / "run" / "checkpoints")[-1])
    assert last.step == 3 and last.state["callbacks"]["CountSteps"] == {"seen": 3, "checkpoints": 1}
    assert isinstance(Callback().state_dict(), dict)


SCRIPT = '''
import sys
sys.path.insert(0, {folder!r})
from counter import CountSteps
from genforge.core.training.trainer import Trainer, TrainConfig
config = TrainConfig(model="dcgan", dataset="digits", image_size=16, batch_size=16, steps=100000,
                     sample_every=0, checkpoint_every=5, log_every=1, threads=1,
                     model_options={{"g_width": 8, "d_width": 8, "latent_dim": 16}})
Trainer(config, {out!r}, progress=False, callbacks=[CountSteps()]).fit()
'''


def test_callback_state_survives_kill_9_and_resume(tmp_path, small_config):
    CountSteps = counter_class(tmp_path)
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", SCRIPT.format(folder=str(tmp_path), out=str(out))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(ckpt.step_checkpoints(out / "checkpoints")) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    last = ckpt.read_checkpoint(ckpt.step_checkpoints(out / "checkpoints")[-1])
    assert last.state["callbacks"]["CountSteps"]["seen"] == last.step >= 10
    config = json.loads((out / "config.json").read_text())["train"]
    counter = CountSteps()
    resumed = Trainer(small_config(**{**config, "steps": last.step + 7}), out, resume=True, progress=False,
                      callbacks=[counter])
    assert counter.seen == last.step  # restored before the first resumed step
    resumed.fit()
    assert resumed.step == last.step + 7 and counter.seen == last.step + 7
