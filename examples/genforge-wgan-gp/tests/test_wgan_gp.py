"""The WGAN-GP plugin, tested from outside genforge: its contract checks, its penalty, its rhythm."""

import torch
from torch import nn

from genforge import DataInfo, StepContext
from genforge.testing import check_model_plugin
from genforge_wgan_gp.model import WGANGP, WGANGPConfig, gradient_penalty

SMALL = {"g_width": 8, "d_width": 8, "latent_dim": 16}


def test_wgan_gp_keeps_the_genforge_contract(genforge_cache):
    report = check_model_plugin("wgan-gp", model_options={**SMALL, "n_critic": 1})
    assert any("ONNX" in step for step in report.steps)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.copy_(torch.full((1, 12), 1 / 12 ** 0.5))  # gradient norm exactly 1 everywhere
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    assert gradient_penalty(critic, real, fake, torch.rand(5, 1, 1, 1)).item() < 1e-10
    with torch.no_grad():
        critic[1].weight.mul_(3)
    assert abs(gradient_penalty(critic, real, fake, torch.rand(5, 1, 1, 1)).item() - 4.0) < 1e-5


def test_generator_updates_every_n_critic_steps(genforge_cli, tmp_path):
    from genforge import load_run

    run = tmp_path / "run"
    genforge_cli("train", "--model", "wgan-gp", "--steps", "6", "--image-size", "16", "--batch-size", "8",
                 "-o", "g_width=8", "-o", "d_width=8", "-o", "n_critic=3", "--sample-every", "3", "--no-progress",
                 "--out", run)
    model = load_run(run).model
    assert int(model.critic_steps) == 6
    genforge_cli("train", "--resume", run, "--steps", "7", "--no-progress")
    assert int(load_run(run).model.critic_steps) == 7


class RecordingContext(StepContext):
    """genforge's step context, recording what the critic is shown and the scores reported to it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.shown, self.reported = [], []

    def augment(self, images):
        self.shown.append(images)
        return super().augment(images)

    def report_real_scores(self, scores, discriminator=None):
        self.reported.append((scores, discriminator))
        super().report_real_scores(scores, discriminator)


def test_the_critic_sees_real_and_generated_images_through_the_augmentation_with_centred_scores():
    info = DataInfo("digits", 1, 16, 16, 10, tuple("0123456789"), {"train": 100})
    model = WGANGP(info, WGANGPConfig(**SMALL, n_critic=1))
    ctx = RecordingContext(model.optimizers(), torch.device("cpu"))
    images = torch.rand(8, 1, 16, 16) * 2 - 1
    metrics = model.training_step(images, None, ctx)
    assert ctx.shown[0] is images, "the reals were not augmented"
    assert len(ctx.shown) == 3 and ctx.shown[2].requires_grad, "the critic's and the generator's fakes"
    (scores, critic), = ctx.reported
    assert abs(float(scores.mean()) - float(metrics["wasserstein"]) / 2) < 1e-5, "real scores minus the midpoint"
    assert critic(images, None).shape == (8,)
