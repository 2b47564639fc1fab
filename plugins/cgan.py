"""Conditional DCGAN for 16 to 128 pixels: labels steer the generator twice, the discriminator twice.

Generator: the label embedding joins the noise at the input, and every BatchNorm is class-conditional
(de Vries et al. 2017, Miyato & Koyama 2018). Discriminator: a projection discriminator (Miyato & Koyama
2018) with spectral normalisation instead of BatchNorm, the hinge loss, and an auxiliary classifier
(AC-GAN, Odena et al. 2017) with cosine logits on D's pooled features, learnt from real images only.
Needs a labelled dataset. The generator's inputs are noise (N, latent_dim, 1, 1) and int32 labels (N,).
The recipe's measured variants and ablations, and the options for the 0.1 recipe: docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge import POW2_SIZES, GeneratorModel, check_options, power_of_two_depth
from genforge.plugins.blocks import (
    add_spectral_norm,
    check_loss,
    discriminator_loss,
    discriminator_tower,
    generator_loss,
    generator_tower,
    init_dcgan_weights,
)


@dataclass
class ConditionalGANConfig:
    latent_dim: int = 100
    embed_dim: int = 32
    g_width: int = 64
    d_width: int = 64
    lr: float = 4e-4  # with the EMA of G: conditional accuracy 0.987 against 0.937 at 2e-4, same FD (docs/models.md)
    beta1: float = 0.0  # Adam betas of SN-GAN / BigGAN (Miyato et al. 2018; Brock et al. 2019)
    beta2: float = 0.9

    loss: str = "hinge"  # bce: the non-saturating loss (Goodfellow et al. 2014); hinge (Lim & Ye 2017)
    spectral_norm: bool = True  # spectral normalisation of D instead of its BatchNorm (Miyato & Koyama 2018)
    conditional_bn: bool = True  # class-conditional BatchNorm gains and biases in G (de Vries et al. 2017)
    class_loss: float = 1.0  # weight of the auxiliary classifier's cross-entropy (Odena et al. 2017); 0: none

    def __post_init__(self):
        check_options(self, ("latent_dim", "embed_dim", "g_width", "d_width"), ("lr",), ("beta1", "beta2"))
        if not self.class_loss >= 0:
            raise ValueError(f"class_loss {self.class_loss!r} must be 0 (off) or more")
        check_loss(self.loss)


CLASS_TEMPERATURE = 0.1


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are looked up per class (de Vries et al. 2017; Miyato & Koyama 2018)."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(features, affine=False)
        self.gain = nn.Embedding(num_classes, features)
        self.bias = nn.Embedding(num_classes, features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class ConditionalGenerator(nn.Module):
    def __init__(self, latent_dim, embed_dim, num_classes, channels, depth, width, conditional_bn=False):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        tower = generator_tower(latent_dim + embed_dim, channels, depth, width)
        if conditional_bn:
            tower = nn.Sequential(*[ConditionalBatchNorm2d(layer.num_features, num_classes)
                                    if isinstance(layer, nn.BatchNorm2d) else layer for layer in tower])
        self.net = tower

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, self.embed(labels).to(z.dtype)[:, :, None, None]], dim=1)
        for layer in self.net:
            x = layer(x, labels) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x


class ProjectionDiscriminator(nn.Module):
    """Scores image-label pairs; with `classify`, also returns class logits of the images."""

    def __init__(self, channels, num_classes, depth, width, batchnorm=True):
        super().__init__()
        self.features, features = discriminator_tower(channels, depth, width, batchnorm)
        self.head = nn.Conv2d(features, 1, 4, 1, 0, bias=False)
        self.embed = nn.Embedding(num_classes, features)
        self.classifier = nn.Linear(features, num_classes, bias=False)

    def forward(self, images: torch.Tensor, labels: torch.Tensor, classify: bool = False):
        h = self.features(images)
        pooled = h.sum(dim=(2, 3))
        score = self.head(h).flatten() + (self.embed(labels).to(h.dtype) * pooled).sum(dim=1)
        if not classify:
            return score
        # cosine logits (NormFace, Wang et al. 2017; normalised as in ReACGAN, Kang et al. 2021): they reach a
        # useful scale from the first steps, where a plain linear head on spectrally normalised features crawls
        cosine = F.normalize(pooled, dim=1) @ F.normalize(self.classifier.weight, dim=1).t().to(h.dtype)
        return score, cosine / CLASS_TEMPERATURE

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key, value in self.classifier.state_dict().items():  # runs saved before the classifier: a fresh one
            state_dict.setdefault(f"{prefix}classifier.{key}", value.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ConditionalGAN(GeneratorModel):
    Config = ConditionalGANConfig
    conditional = True
    ema_by_default = True  # EMA of G (Yazici et al. 2019; Brock et al. 2019)
    augments = True
    image_sizes = POW2_SIZES

    def __init__(self, info, config: ConditionalGANConfig):
        super().__init__(info, config)
        depth = power_of_two_depth(info.height, "cgan")
        self.num_classes = info.num_classes
        self.latent_shape = (config.latent_dim, 1, 1)
        self.G = ConditionalGenerator(config.latent_dim, config.embed_dim, info.num_classes, info.channels, depth,
                                      config.g_width, config.conditional_bn)
        self.D = ProjectionDiscriminator(info.channels, info.num_classes, depth, config.d_width,
                                         batchnorm=not config.spectral_norm)
        self.apply(init_dcgan_weights)
        for layer in self.G.modules():
            if isinstance(layer, ConditionalBatchNorm2d):
                layer.reset_parameters()
        if config.spectral_norm:
            add_spectral_norm(self.D, skip=(self.D.classifier,))  # its rows are normalised in forward

    def optimizers(self):
        c = self.config
        return {
            "d": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2)),
            "g": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2)),
        }

    def training_step(self, images, labels, ctx):
        n, weight = images.shape[0], self.config.class_loss
        z = ctx.randn(n, *self.latent_shape)
        fake_labels = torch.randint(0, self.num_classes, (n,), device=images.device)
        with ctx.autocast():
            fake = self.G(z, fake_labels)
            d_real, real_logits = self.D(ctx.augment(images), labels, classify=True)
            d_fake = self.D(ctx.augment(fake.detach()), fake_labels)
            ctx.report_real_scores(d_real, self.D)
            d_class = F.cross_entropy(real_logits.float(), labels)  # real images only: fakes would teach it G's errors
            d_loss = discriminator_loss(self.config.loss, d_real, d_fake) + weight * d_class
        ctx.optimize("d", d_loss)
        with ctx.frozen(self.D), ctx.autocast():
            d_gen, fake_logits = self.D(ctx.augment(fake), fake_labels, classify=True)
            g_class = F.cross_entropy(fake_logits.float(), fake_labels)
            g_loss = generator_loss(self.config.loss, d_gen) + weight * g_class
        ctx.optimize("g", g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "d_class": d_class.detach(), "g_class": g_class.detach(),
                "d_real": torch.sigmoid(d_real.detach()).float().mean(),
                "d_fake": torch.sigmoid(d_fake.detach()).float().mean()}

    def generator(self) -> nn.Module:
        return self.G
