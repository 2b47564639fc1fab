"""Convolutional VAE (Kingma & Welling 2014): encoder to mean and log-variance,
reparameterisation, decoder; loss = reconstruction NLL + kl_weight * KL, per image, in nats.

likelihood "bernoulli": BCE on pixels mapped to [0, 1] (the decoder's logits); the
generator outputs tanh(logits / 2), which is 2 * sigmoid(logits) - 1, in [-1, 1].
likelihood "gaussian": fixed sigma on the [-1, 1] scale; the generator outputs tanh(mean).
The generator's input is noise of shape (N, latent_dim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge import POW2_SIZES, GeneratorModel, check_options, power_of_two_depth
from genforge.plugins.blocks import discriminator_tower


@dataclass
class VAEConfig:
    latent_dim: int = 32
    width: int = 32
    likelihood: str = "bernoulli"  # bernoulli | gaussian
    gaussian_sigma: float = 0.1
    kl_weight: float = 1.0
    lr: float = 1e-3
    lr_decay: float = 1.0  # per-step exponential learning-rate decay; 1.0: constant
    prior: str = "fitted"  # fitted: sample the Gaussian fitted to the posterior means; standard: N(0, I)
    prior_momentum: float = 0.01  # how fast the fitted Gaussian follows the encoder (per step)

    def __post_init__(self):
        check_options(self, ("latent_dim", "width"), ("gaussian_sigma", "lr", "lr_decay"))
        if self.prior not in ("fitted", "standard"):
            raise ValueError(f"prior {self.prior!r} is unknown; use fitted or standard")
        if not 0 < self.prior_momentum <= 1:
            raise ValueError(f"prior_momentum = {self.prior_momentum!r} must be in (0, 1]")
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood {self.likelihood!r} is unknown; use bernoulli or gaussian")
        if not 0 <= self.kl_weight < float("inf"):
            raise ValueError(f"kl_weight = {self.kl_weight!r} must be a finite number, 0 or more")
        if self.lr_decay > 1:
            raise ValueError(f"lr_decay = {self.lr_decay!r} must be at most 1 (1: constant)")


class VAEDecoder(nn.Module):
    """Noise (N, latent_dim) -> images in [-1, 1]: the VAE's inference generator.

    Its noise is mapped onto the prior first: with the fitted prior (the default), the Gaussian fitted
    to the encoder's posterior means over training (ex-post density estimation, Ghosh et al. 2020,
    "From Variational to Deterministic Autoencoders"), so samples come from where the data's codes
    lie instead of N(0, I)'s empty regions, whose codes decode to blends. Checkpoints saved before
    load with the standard prior."""

    def __init__(self, latent_dim, channels, depth, width, likelihood):
        super().__init__()
        self.top = width * 2 ** (depth - 1)
        self.fc = nn.Linear(latent_dim, self.top * 16)
        layers, c = [nn.BatchNorm2d(self.top), nn.ReLU(True)], self.top
        for _ in range(depth - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1)]
        self.net = nn.Sequential(*layers)
        self.output_scale = 0.5 if likelihood == "bernoulli" else 1.0
        # the prior samples are drawn from: N(0, I) to start with; see VAE.fit_prior
        self.register_buffer("prior_mean", torch.zeros(latent_dim))
        self.register_buffer("prior_scale_tril", torch.eye(latent_dim))

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, self.top, 4, 4))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes -> images in [-1, 1]: the likelihood's mean."""
        return torch.tanh(self.logits(z) * self.output_scale)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Noise u ~ N(0, I) -> codes from the prior (z = prior_mean + prior_scale_tril @ u) -> images."""
        return self.decode(self.prior_mean + u @ self.prior_scale_tril.t())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("prior_mean", "prior_scale_tril"):  # runs saved before the fitted prior: the standard one
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class VAE(GeneratorModel):
    Config = VAEConfig
    image_sizes = POW2_SIZES

    def __init__(self, info, config: VAEConfig):
        super().__init__(info, config)
        depth = power_of_two_depth(info.height, "vae")
        self.latent_shape = (config.latent_dim,)
        self.encoder, features = discriminator_tower(info.channels, depth, config.width)
        self.to_stats = nn.Linear(features * 16, 2 * config.latent_dim)
        self.decoder = VAEDecoder(config.latent_dim, info.channels, depth, config.width, config.likelihood)
        # running first and second moments of the posterior means, for the fitted prior
        self.register_buffer("code_mean", torch.zeros(config.latent_dim))
        self.register_buffer("code_second_moment", torch.eye(config.latent_dim))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("code_mean", "code_second_moment"):  # runs saved before the fitted prior
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.to_stats(self.encoder(images).flatten(1)).chunk(2, dim=1)
        return mean, log_var.clamp(-30, 20)

    def negative_elbo(self, images: torch.Tensor, noise: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image averages, in nats: reconstruction NLL, KL, and their sum (-ELBO, kl_weight 1)."""
        mean, log_var = self.encode(images)
        z = mean + noise * torch.exp(0.5 * log_var)
        logits = self.decoder.logits(z).float()
        n = images.shape[0]
        if self.config.likelihood == "bernoulli":
            recon = F.binary_cross_entropy_with_logits(logits, (images.float() + 1) / 2, reduction="sum") / n
        else:
            sigma = self.config.gaussian_sigma
            sq = F.mse_loss(torch.tanh(logits), images.float(), reduction="sum") / n
            recon = 0.5 * sq / sigma**2 + images[0].numel() * math.log(sigma * math.sqrt(2 * math.pi))
        kl = -0.5 * torch.sum(1 + log_var.float() - mean.float() ** 2 - log_var.float().exp()) / n
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl, "codes": mean.detach()}

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        mean, _ = self.encode(images)
        return self.decoder.decode(mean)

    def optimizers(self):
        return {"vae": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def schedulers(self, optimizers):
        if self.config.lr_decay == 1.0:
            return {}
        return {"vae": torch.optim.lr_scheduler.ExponentialLR(optimizers["vae"], gamma=self.config.lr_decay)}

    def training_step(self, images, labels, ctx):
        noise = ctx.randn(images.shape[0], self.config.latent_dim)
        with ctx.autocast():
            terms = self.negative_elbo(images, noise)
            loss = terms["recon"] + self.config.kl_weight * terms["kl"]
        ctx.optimize("vae", loss)
        if self.config.prior == "fitted":
            self.fit_prior(terms["codes"])
        return {"loss": loss.detach(), "recon": terms["recon"].detach(), "kl": terms["kl"].detach()}

    @torch.no_grad()
    def fit_prior(self, codes: torch.Tensor) -> None:
        """Move the running moments towards this batch's posterior means; refit the sampler's Gaussian."""
        m = self.config.prior_momentum
        codes = codes.detach().float()
        self.code_mean.lerp_(codes.mean(0), m)
        self.code_second_moment.lerp_(codes.t() @ codes / len(codes), m)
        covariance = self.code_second_moment - torch.outer(self.code_mean, self.code_mean)
        jitter = 1e-4 * torch.eye(len(covariance), device=covariance.device)
        scale_tril, info = torch.linalg.cholesky_ex(covariance + jitter)
        if int(info) == 0:
            self.decoder.prior_mean.copy_(self.code_mean)
            self.decoder.prior_scale_tril.copy_(scale_tril)

    def generator(self) -> nn.Module:
        return self.decoder
