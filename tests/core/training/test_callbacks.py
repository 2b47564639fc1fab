"""The trainer's callbacks: a callback written here (counting steps, stopping early) works without touching
trainer.py, and its state survives kill -9 and --resume."""

import json
import signal
import subprocess
import sys
import time

import pytest
from helpers import sample_plugin

from genforge.core.runs import checkpoint as ckpt
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


# -- callbacks a Lightning user expects ---------------------------------------------------------
class RecordScores:
    """A user's evaluation hook."""

    def __init__(self):
        self.seen = []

    def on_evaluation(self, trainer, scores):
        self.seen.append((trainer.step, dict(scores)))


def test_early_stopping_ends_training_says_why_and_records_it(tmp_path, genforge_cache):
    import genforge
    from genforge import Callback, EarlyStopping, LearningRateMonitor

    class Hook(RecordScores, Callback):
        pass

    hook = Hook()
    run = genforge.train("dcgan", "digits", out=tmp_path / "run", steps=40, image_size=16, batch_size=16,
                         eval_every=2, eval_samples=50, eval_metric="fd", sample_every=0, checkpoint_every=0,
                         log_every=2, progress=False, model_options={"g_width": 8, "d_width": 8, "latent_dim": 16},
                         callbacks=[EarlyStopping("fd", patience=1, min_delta=1e9), LearningRateMonitor(), hook])
    assert run.trained["step"] == 4, "the first evaluation sets the best; the second cannot beat it by 1e9"
    assert [step for step, _ in hook.seen] == [2, 4] and "fd" in hook.seen[0][1]
    assert run.stop_reason.startswith("early stopping: fd did not improve for 1 evaluation(s)")
    assert run.metrics("stop")[-1] == {"kind": "stop", "step": 4, "reason": run.stop_reason}
    assert {"lr_g", "lr_d"} <= set(run.metrics("lr")[0])


@pytest.mark.slow
def test_the_cli_stops_early_and_prints_why_last(tmp_path, genforge_cache):
    from helpers import run_genforge

    config = tmp_path / "small-evaluations.toml"
    config.write_text("eval_samples = 50\n")
    result = run_genforge("train", "--steps", "40", "--image-size", "16", "--batch-size", "16", "-o", "g_width=8",
                          "-o", "d_width=8", "--no-progress", "--out", tmp_path / "run", "--eval-every", "2",
                          "--config", config, "--early-stopping", "1", "--early-stopping-delta", "1e9",
                          "--sample-every", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("stopped at step 4: early stopping: fd")
    result = run_genforge("train", "--steps", "4", "--no-progress", "--out", tmp_path / "r2", "--early-stopping", "1")
    assert result.returncode == 2 and "--eval-every" in result.stderr and not (tmp_path / "r2" / "config.json").exists()


def test_callback_arguments_are_checked_in_python_terms():
    from genforge import EarlyStopping, UserError

    for bad in ({"patience": 0}, {"patience": 1.5}, {"min_delta": float("nan")}, {"metric": 3}):
        with pytest.raises(UserError, match="EarlyStopping"):
            EarlyStopping(**bad)
