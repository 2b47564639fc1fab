"""The plain conditional GAN loop a newcomer writes from a tutorial, as a yardstick for the built-in cgan.

One-hot labels concatenated to the noise (G) and as extra image channels (D), DCGAN towers with
BatchNorm in both, the non-saturating BCE loss and Adam(2e-4, betas 0.5/0.999): the conditional
DCGAN of the PyTorch tutorials (Mirza & Osindero 2014; Radford et al. 2015). It trains on the same
genforge dataset, batches and epochs, and is scored by the same evaluation, so `quality.py
--baseline` can put the built-in defaults beside it (FD at most half of the plain loop's).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from genforge.core.contract import open_dataset
from genforge.core.evaluation.scoring import evaluate_generator
from genforge.core.model import GeneratorModel, power_of_two_depth
from genforge.core.runs.config import TrainConfig
from genforge.plugins.blocks import discriminator_tower, generator_tower  # DCGAN's towers, BatchNorm in both


class Generator(nn.Module):
    def __init__(self, latent_dim, num_classes, channels, size):
        super().__init__()
        self.num_classes = num_classes
        self.net = generator_tower(latent_dim + num_classes, channels, power_of_two_depth(size, "plain cgan"), 64)

    def forward(self, z, labels):
        onehot = F.one_hot(labels.long(), self.num_classes).to(z.dtype)[:, :, None, None]
        return self.net(torch.cat([z, onehot], 1))


class PlainCGAN(GeneratorModel):
    """Only so that genforge's evaluation can score the plain loop's generator."""

    conditional = True

    def __init__(self, info, latent_dim=100):
        super().__init__(info, None)
        self.latent_shape = (latent_dim, 1, 1)
        self.G = Generator(latent_dim, info.num_classes, info.channels, info.height)
        depth = power_of_two_depth(info.height, "plain cgan")
        features, width = discriminator_tower(info.channels + info.num_classes, depth, 64, batchnorm=True)
        self.D = nn.Sequential(features, nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Flatten())

    def generator(self):
        return self.G


def init_weights(module):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def train_plain_cgan(config: TrainConfig, epochs: int) -> tuple[PlainCGAN, float]:
    """Train the plain loop on config's dataset for `epochs`; returns the model and the wall time."""
    dataset, info = open_dataset(config.dataset, "train", config.image_size, config.channels, config.data_dir,
                                 seed=config.seed)
    torch.manual_seed(config.seed)
    model = PlainCGAN(info)
    model.apply(init_weights)
    opt_g = torch.optim.Adam(model.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True)
    k = info.num_classes
    start = time.perf_counter()
    for _ in range(epochs):
        for images, labels in loader:
            n = images.shape[0]
            real_maps = F.one_hot(labels.long(), k).float()[:, :, None, None].expand(n, k, *images.shape[2:])
            fake_labels = torch.randint(0, k, (n,))
            fake_maps = F.one_hot(fake_labels, k).float()[:, :, None, None].expand_as(real_maps)
            fake = model.G(torch.randn(n, *model.latent_shape), fake_labels)
            d_real = model.D(torch.cat([images, real_maps], 1))
            d_fake = model.D(torch.cat([fake.detach(), fake_maps], 1))
            d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                      + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            d_gen = model.D(torch.cat([fake, fake_maps], 1))
            g_loss = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
    return model, time.perf_counter() - start


def score_plain_cgan(config: TrainConfig, epochs: int, n: int = 2000) -> dict:
    model, wall = train_plain_cgan(config, epochs)
    scores = evaluate_generator(model, model.info, config, n=n, metrics=["fd", "kid", "cond_acc"])
    return {**scores, "model": "plain cgan loop", "wall_s": wall, "epochs": epochs, "s_per_epoch": wall / epochs}


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits-distorted")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    result = score_plain_cgan(TrainConfig(model="cgan", dataset=args.dataset), args.epochs)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
