"""A third-party conditional VAE (tests/core/test_contract.py): genforge's metrics must all apply to it."""
import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from genforge import GeneratorModel


@dataclasses.dataclass
class CVAEConfig:
    latent_dim: int = 8
    hidden: int = 64
    lr: float = 2e-3


class Decoder(nn.Module):
    def __init__(self, latent_dim, hidden, classes, shape):
        super().__init__()
        self.shape, self.classes = shape, classes
        self.net = nn.Sequential(nn.Linear(latent_dim + classes, hidden), nn.ReLU(),
                                 nn.Linear(hidden, math.prod(shape)))

    def logits(self, z, labels):
        onehot = F.one_hot(labels.long(), self.classes).to(z.dtype)
        return self.net(torch.cat([z, onehot], 1)).view(-1, *self.shape)

    def forward(self, z, labels):
        return torch.tanh(self.logits(z, labels) / 2)


class CVAE(GeneratorModel):
    """Conditional VAE: both encoder and decoder see the label."""

    Config = CVAEConfig
    conditional = True

    def __init__(self, info, config):
        super().__init__(info, config)
        shape = (info.channels, info.height, info.width)
        self.latent_shape = (config.latent_dim,)
        self.classes = info.num_classes
        self.encoder = nn.Sequential(nn.Linear(math.prod(shape) + self.classes, config.hidden), nn.ReLU(),
                                     nn.Linear(config.hidden, 2 * config.latent_dim))
        self.decoder = Decoder(config.latent_dim, config.hidden, self.classes, shape)

    def encode(self, images, labels):
        onehot = F.one_hot(labels.long(), self.classes).to(images.dtype)
        mean, log_var = self.encoder(torch.cat([images.flatten(1), onehot], 1)).chunk(2, 1)
        return mean, log_var.clamp(-20, 10)

    def negative_elbo(self, images, noise, labels):
        mean, log_var = self.encode(images, labels)
        logits = self.decoder.logits(mean + noise * torch.exp(0.5 * log_var), labels)
        n = len(images)
        recon = F.binary_cross_entropy_with_logits(logits, (images + 1) / 2, reduction="sum") / n
        kl = -0.5 * torch.sum(1 + log_var - mean ** 2 - log_var.exp()) / n
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl}

    def reconstruct(self, images, labels):
        return self.decoder(self.encode(images, labels)[0], labels)

    def optimizers(self):
        return {"vae": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def training_step(self, images, labels, ctx):
        terms = self.negative_elbo(images, ctx.randn(len(images), *self.latent_shape), labels)
        ctx.optimize("vae", terms["neg_elbo"])
        return {k: v.detach() for k, v in terms.items()}

    def generator(self):
        return self.decoder
