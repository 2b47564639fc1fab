"""Augmentation for small data: differentiable, applied to real and generated images alike, adaptive in
strength, chosen by the dataset's size, recorded in the run and restored on resume."""

import json

import pytest
import torch
from helpers import refused

from genforge.core.training.augment import OPERATIONS, Augmentation, colour, cutout, resolve_mode, translate
from genforge.core.training.step import StepContext


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.__name__)
def test_every_operation_changes_the_images_and_passes_gradients(operation):
    torch.manual_seed(0)
    images = torch.rand(16, 3, 16, 16, requires_grad=True)
    out = operation(images)
    assert out.shape == images.shape and not torch.equal(out, images)
    (out * torch.randn_like(out)).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_translation_moves_content_without_changing_it():
    torch.manual_seed(0)
    images = torch.zeros(64, 1, 16, 16)
    images[:, :, 8, 8] = 1.0
    moved = translate(images)
    where = [tuple(torch.nonzero(m[0] == 1.0)[0].tolist()) for m in moved]
    assert all(abs(y - 8) <= 2 and abs(x - 8) <= 2 for y, x in where)
    assert len(set(where)) > 5 and float(moved.sum()) == 64.0


def test_cutout_blanks_a_quarter_of_each_image_and_colour_keeps_greyscale_grey():
    torch.manual_seed(0)
    holes = (cutout(torch.ones(8, 1, 16, 16)) == 0).float().mean(dim=(1, 2, 3))
    assert torch.allclose(holes, torch.full((8,), 0.25))
    assert colour(torch.rand(4, 1, 8, 8)).shape == (4, 1, 8, 8)


def test_off_is_the_identity_and_fixed_applies_every_operation():
    images = torch.rand(4, 1, 8, 8)
    assert Augmentation("none")(images) is images
    assert Augmentation("fixed").p == 1.0 and not torch.equal(Augmentation("fixed")(images), images)


def test_adaptive_strength_rises_while_the_discriminator_is_sure_of_the_reals_and_falls_after():
    augmentation = Augmentation("adaptive")
    for _ in range(400):  # 25,600 images: more than IMAGES_TO_FULL
        augmentation.report_real_scores(torch.full((64,), 3.0))
        augmentation.end_step(64)
    assert augmentation.p == 1.0
    for _ in range(8):
        augmentation.report_real_scores(torch.full((64,), -3.0))
        augmentation.end_step(64)
    assert 0.0 < augmentation.p < 1.0
    saved = augmentation.state_dict()
    restored = Augmentation("adaptive")
    restored.load_state_dict(saved)
    assert restored.state_dict() == saved


def test_with_held_out_reals_the_strength_follows_how_much_surer_the_discriminator_is_of_its_own_reals():
    held_out = torch.zeros(64, 1, 8, 8), torch.zeros(64, dtype=torch.long)
    memorised = Augmentation("adaptive", held_out=lambda: held_out)
    for _ in range(400):  # its training reals scored real, the held-out ones fake: r_v = 1
        memorised.report_real_scores(torch.full((64,), 0.1), lambda images, labels: torch.full((len(images),), -2.0))
        memorised.end_step(64)
    assert memorised.p == 1.0 and memorised.signal == pytest.approx(1.0)
    general = Augmentation("adaptive", held_out=lambda: held_out, p=0.5)
    for _ in range(40):  # both scored alike, though every score is sure of the reals (r_t would raise p)
        general.report_real_scores(torch.full((64,), 3.0), lambda images, labels: torch.full((len(images),), 3.0))
        general.end_step(64)
    assert general.p < 0.5 and general.signal == pytest.approx(0.0)
    saved = memorised.state_dict()
    assert {"gap", "gaps"} <= set(saved)


def test_the_trainer_hands_adaptive_augmentation_batches_of_the_test_split(tmp_path, small_config):
    from genforge.core.contract import open_dataset
    from genforge.core.data import batch_of
    from genforge.core.training.trainer import Trainer

    trainer = Trainer(small_config("cgan", "digits", augment="adaptive"), tmp_path / "run", progress=False)
    test, _ = open_dataset("digits", "test", image_size=16)
    images, labels = trainer.ctx.augmentation.held_out()
    assert images.shape == (16, 1, 16, 16) and labels.shape == (16,)
    rows = batch_of(test, torch.arange(len(test)))[0].flatten(1)
    assert all(bool((rows == image.flatten()).all(dim=1).any()) for image in images), "not images of the test split"
    assert torch.equal(trainer.ctx.augmentation.held_out()[0], images), "the same step draws the same batch"
    trainer.release_lock()
    fixed = Trainer(small_config("cgan", "digits", augment="fixed"), tmp_path / "fixed", progress=False)
    assert fixed.ctx.augmentation.held_out is None
    fixed.release_lock()


def test_with_several_processes_each_scores_its_share_of_the_one_held_out_batch():
    from genforge.core.contract import open_dataset
    from genforge.core.training.batches import HeldOutSampler
    from genforge.core.training.distributed import Placement

    test, _ = open_dataset("digits", "test", image_size=8)
    whole = HeldOutSampler(test, 16, seed=5).batch(7)[0]
    shares = [HeldOutSampler(test, 16, seed=5, placement=Placement(rank, 2, rank)).batch(7)[0] for rank in (0, 1)]
    assert [len(share) for share in shares] == [8, 8]
    assert sorted(map(tuple, torch.cat(shares).flatten(1).tolist())) == sorted(map(tuple, whole.flatten(1).tolist()))
    assert not torch.equal(whole, HeldOutSampler(test, 16, seed=5).batch(8)[0]), "a new step, a new batch"


class Recording(Augmentation):
    def __call__(self, images):
        self.seen.append(images)
        return super().__call__(images)


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_a_gan_step_shows_its_discriminator_real_and_generated_images_through_the_augmentation(model):
    from conftest import SMALL_MODELS

    from genforge.core.contract import build_model
    from genforge.core.data import DataInfo

    info = DataInfo("digits", 1, 16, 16, 10, tuple("0123456789"), {"train": 100})
    gan = build_model(model, info, SMALL_MODELS[model])
    augmentation = Recording("fixed")
    augmentation.seen = []
    ctx = StepContext(gan.optimizers(), torch.device("cpu"), augmentation=augmentation)
    images, labels = torch.rand(8, 1, 16, 16) * 2 - 1, torch.randint(0, 10, (8,))
    gan.training_step(images, labels, ctx)
    assert any(seen is images for seen in augmentation.seen), "the reals were not augmented"
    generated = [seen for seen in augmentation.seen if seen is not images]
    assert len(generated) >= 2 and any(seen.requires_grad for seen in generated), "the fakes were not augmented"


def test_the_default_follows_the_dataset_size_and_only_for_models_that_augment():
    from genforge.plugins.cgan import ConditionalGAN
    from genforge.plugins.vae import VAE

    assert resolve_mode(None, ConditionalGAN, 500) == "adaptive"
    assert resolve_mode(None, ConditionalGAN, 200_000) == "none"
    assert resolve_mode("fixed", ConditionalGAN, 200_000) == "fixed"
    assert resolve_mode(None, VAE, 500) == "none"


def test_the_run_records_its_augmentation_and_logs_its_strength_and_resume_continues_it(tmp_path, train_small):
    from genforge.core.runs.config import resumed_config
    from genforge.core.runs.run_dir import read_metrics, read_run_config
    from genforge.core.training.trainer import Trainer

    out = tmp_path / "run"
    train_small(out, "cgan", steps=8, checkpoint_every=4)
    assert json.loads((out / "config.json").read_text())["train"]["augment"] == "adaptive"
    strengths = [json.loads(line).get("augment_p") for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert strengths and all(p is not None and 0 <= p <= 1 for p in strengths)
    signals = [r["augment_signal"] for r in read_metrics(out, "train") if "augment_signal" in r]
    assert signals and all(-1 <= s <= 1 for s in signals), "the overfitting signal is logged beside p"
    trainer = Trainer(resumed_config(read_run_config(out), {"steps": 12}), out, resume=True, progress=False)
    assert trainer.ctx.augmentation.p == pytest.approx([p for p in strengths if p is not None][-1])


def test_augment_asked_of_a_model_that_does_not_augment_is_one_line_and_leaves_no_run(tmp_path, genforge_cli):
    refused(genforge_cli, ("train", "--model", "vae", "--augment", "fixed", "--steps", "2", "--out", tmp_path / "r"),
            ["--augment fixed", "does not augment"])
    assert not (tmp_path / "r").exists()


def test_a_discriminator_function_that_fails_is_named_by_the_step_check_before_training():
    from conftest import SMALL_MODELS

    from genforge.core.contract import build_model
    from genforge.core.data import DataInfo
    from genforge.core.errors import ContractError
    from genforge.core.registry import get_registry
    from genforge.core.training.step import check_training_step

    info = DataInfo("digits", 1, 16, 16, 10, tuple("0123456789"), {"train": 100})
    gan, spec = build_model("dcgan", info, SMALL_MODELS["dcgan"]), get_registry().model("dcgan")
    probe = torch.rand(8, 1, 16, 16) * 2 - 1, torch.zeros(8).long()
    check_training_step(spec, gan, probe)

    class WrongArity(type(gan)):
        def training_step(self, images, labels, ctx):
            ctx.report_real_scores(self.D(images), lambda images: self.D(images))  # must take (images, labels)
            return {"loss": torch.zeros(())}

    gan.__class__ = WrongArity
    with pytest.raises(ContractError, match=r"dcgan.*training_step\(images, labels, ctx\) raised TypeError"):
        check_training_step(spec, gan, probe)
