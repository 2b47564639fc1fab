"""A denoising diffusion model for 16 to 128 pixels whose generator is the whole deterministic DDIM sampler.

Network: a small U-Net (Ronneberger et al. 2015, as used by Ho et al. 2020): residual blocks with group
norm and SiLU, a sinusoidal time embedding that scales and shifts every block, self-attention at 8x8
and below (and in the middle), nearest-neighbour upsampling plus a convolution (no ConvTranspose).
Training: continuous time t in [0, 1] on the cosine schedule written as a log-SNR (Nichol & Dhariwal
2021; Kingma et al. 2021), v-prediction (Salimans & Ho 2022) with min-SNR-5 loss weights (Hang et
al. 2023). Where the dataset has labels the model is conditional, with classifier-free guidance (Ho &
Salimans 2022): labels are dropped to a "null" class with probability `label_dropout` in training,
and the sampler mixes the conditional and null predictions with `guidance`.

Sampling: `generator()` returns the DDIM sampler (Song et al. 2021, eta = 0) as one nn.Module: noise
(N, C, H, W) and labels in, images out, `steps` network evaluations unrolled in forward. It draws no
noise of its own, so it is deterministic, and it exports to one ONNX graph (no Loop) like any other
generator. `steps` and `guidance` are sampling options: they can be changed after training
(`--sampling steps=10`, core/model.py). The choices and their measurements: docs/models.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge import GeneratorModel, check_options

LOGSNR_MIN, LOGSNR_MAX = -15.0, 15.0
SCHEDULES = ("cosine", "linear")
PREDICTIONS = ("v", "eps")


@dataclass
class DiffusionConfig:
    width: int = 32  # channels of the first level; 2x at the levels below
    blocks: int = 1  # residual blocks per level on the way down (one more on the way up)
    attention_size: int = 8  # self-attention at feature maps this size and smaller; 0: none
    lr: float = 2e-3
    warmup_steps: int = 200
    schedule: str = "cosine"
    prediction: str = "v"
    min_snr: float = 5.0  # min-SNR-gamma loss weighting; 0: plain MSE on the prediction
    label_dropout: float = 0.1  # classifier-free guidance: share of training labels replaced by the null class
    steps: int = 20  # DDIM steps when sampling (a sampling option)
    guidance: float = 1.1  # classifier-free guidance scale; 1: purely conditional, no extra pass (sampling option)

    def __post_init__(self):
        check_options(self, ("width", "blocks", "steps"), ("lr",), ("label_dropout",))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is unknown; use {' or '.join(SCHEDULES)}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction {self.prediction!r} is unknown; use {' or '.join(PREDICTIONS)}")
        for name in ("min_snr", "guidance", "warmup_steps", "attention_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} = {value!r} must be a finite number, 0 or more")
        if self.steps > 1000:
            raise ValueError(f"steps = {self.steps} is more than 1000; DDIM needs far fewer (20 is the default)")


def logsnr(t: torch.Tensor | float, schedule: str):
    """log(alpha^2 / sigma^2) at time t in [0, 1]: +15 (clean) at 0 down to -15 (noise) at 1."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if schedule == "cosine":
        value = -2 * torch.log(torch.tan(math.pi * t.clamp(1e-7, 1 - 1e-7) / 2))
    else:  # DDPM's linear betas from 1e-4 to 0.02 over 1000 steps, in continuous time
        log_alpha2 = -(1e-4 * t + 0.5 * (0.02 - 1e-4) * t ** 2) * 1000
        value = log_alpha2 - torch.log(-torch.expm1(log_alpha2.clamp(max=-1e-7)))
    return value.clamp(LOGSNR_MIN, LOGSNR_MAX)


def alpha_sigma(t, schedule: str):
    """Signal and noise scales at time t: alpha^2 + sigma^2 = 1."""
    snr = logsnr(t, schedule)
    return torch.sigmoid(snr).sqrt(), torch.sigmoid(-snr).sqrt()


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of 1000 t (Vaswani et al. 2017), (N,) -> (N, dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4), channels)


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, embed_dim: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(embed_dim, 2 * out_channels)
        self.norm2, self.conv2 = group_norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, embedding):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(embedding)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class Attention(nn.Module):
    """Single-head self-attention over the positions of a feature map, written with matmuls (exports as such)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm, self.qkv = group_norm(channels), nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, embedding=None):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)
        return x + self.out((v @ weights.transpose(1, 2)).reshape(n, c, h, w))


class UNet(nn.Module):
    """(x_t, t, labels) -> the prediction (v or noise) for images of `size` pixels."""

    def __init__(self, channels: int, size: int, width: int, blocks: int, attention_size: int, num_classes: int):
        super().__init__()
        self.embed_dim = 4 * width
        self.time = nn.Sequential(nn.Linear(width, self.embed_dim), nn.SiLU(),
                                  nn.Linear(self.embed_dim, self.embed_dim))
        self.classes = nn.Embedding(num_classes + 1, self.embed_dim) if num_classes else None  # last: null class
        levels = max(2, int(math.log2(size)) - 2)  # down to 8x8: 32 px has 32, 16 and 8
        widths = [width * min(2 ** i, 2) for i in range(levels)]
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down, skips, current, resolution = nn.ModuleList(), [width], width, size
        for i, w in enumerate(widths):
            for _ in range(blocks):
                self.down.append(self._level(current, w, resolution <= attention_size))
                current = w
                skips.append(current)
            if i < levels - 1:
                self.down.append(nn.Conv2d(current, current, 3, stride=2, padding=1))
                skips.append(current)
                resolution //= 2
        self.middle = nn.ModuleList([ResBlock(current, current, self.embed_dim), Attention(current),
                                     ResBlock(current, current, self.embed_dim)])
        self.up = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(self._level(current + skips.pop(), w, resolution <= attention_size))
                current = w
            if i > 0:
                self.up.append(Upsample(current))
                resolution *= 2
        self.head = nn.Sequential(group_norm(current), nn.SiLU(), nn.Conv2d(current, channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def _level(self, in_channels, out_channels, attention):
        block = ResBlock(in_channels, out_channels, self.embed_dim)
        return nn.ModuleList([block, Attention(out_channels)]) if attention else nn.ModuleList([block])

    def forward(self, x, t, labels=None):
        embedding = self.time(time_embedding(t, self.embed_dim // 4).to(x.dtype))
        if self.classes is not None:
            embedding = embedding + self.classes(labels.long())
        h = self.stem(x)
        skips = [h]
        for layer in self.down:
            h = layer(h) if isinstance(layer, nn.Conv2d) else _run(layer, h, embedding)
            skips.append(h)
        for layer in self.middle:
            h = layer(h, embedding)
        for layer in self.up:
            h = layer(h) if isinstance(layer, Upsample) else _run(layer, torch.cat([h, skips.pop()], 1), embedding)
        return self.head(h)


def _run(level: nn.ModuleList, h, embedding):
    for layer in level:
        h = layer(h, embedding)
    return h


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DDIMSampler(nn.Module):
    """The deterministic DDIM sampler over `net`: noise (N, C, H, W) [and int32 labels] -> images in [-1, 1].

    An iterative generator in genforge's sense (core/model.py): forward is `step` repeated over `schedule()`,
    each step with its own constants (t, alpha, sigma and the next step's alpha and sigma; the last step's
    next scales are 1 and 0, so it returns the clean estimate). The exporter writes one step and repeats it in
    the graph with each step's constants. With guidance != 1 each step runs the network once on a doubled
    batch (labels, then the null class) and mixes the two predictions.
    """

    def __init__(self, net: UNet, steps: int, guidance: float, schedule: str, prediction: str,
                 num_classes: int | None):
        super().__init__()
        self.net = net
        self.steps, self.guidance, self.noise_schedule, self.prediction = steps, guidance, schedule, prediction
        self.num_classes = num_classes

    def schedule(self) -> list[tuple[float, ...]]:
        """(t, alpha, sigma, alpha_next, sigma_next) of each step, from t = 1 (pure noise) down."""
        times = [1.0 - i / self.steps for i in range(self.steps)]
        scales = [tuple(float(v) for v in alpha_sigma(t, self.noise_schedule)) for t in times] + [(1.0, 0.0)]
        return [(t, *scales[i], *scales[i + 1]) for i, t in enumerate(times)]

    def forward(self, z, labels=None):
        x = z.float()  # the sampler's arithmetic stays float32 when the network runs in bf16
        for constants in self.schedule():
            x = self.step(x, labels, constants)
        return x

    def step(self, x, labels, constants):
        """One DDIM update; `constants` is a step of schedule(), as floats or as a float32 tensor of five."""
        t, alpha, sigma, alpha_next, sigma_next = (constants[i] for i in range(5))
        x0 = self.predict_clean(x, t, alpha, sigma, labels)
        eps = (x - alpha * x0) / sigma
        return alpha_next * x0 + sigma_next * eps

    def predict_clean(self, x, t, alpha, sigma, labels):
        guided = labels is not None and self.guidance != 1.0
        batch = torch.cat([x, x]) if guided else x
        if labels is not None:
            labels = labels.long()
            labels = torch.cat([labels, torch.full_like(labels, self.num_classes)]) if guided else labels
        times = torch.ones(batch.shape[0], device=x.device) * t
        weights = self.net.stem.weight
        out = self.net(batch.to(weights.dtype), times, labels).float()
        if guided:
            conditional, unconditional = out[: x.shape[0]], out[x.shape[0]:]  # chunk(2) would fix the batch size
            out = unconditional + self.guidance * (conditional - unconditional)
        x0 = alpha * x - sigma * out if self.prediction == "v" else (x - sigma * out) / alpha
        return x0.clamp(-1, 1)


class Diffusion(GeneratorModel):
    Config = DiffusionConfig
    ema_by_default = True  # sampling from the averaged weights is the standard (Ho et al. 2020); 0.999 here
    bf16_by_default = True  # half the step time where bf16 is native, same quality (docs/models.md)
    batch_size_by_default = 32  # twice the steps of batch 64 in the same time, a lower FD (docs/models.md)
    image_sizes = (16, 32, 64, 128)
    sampling_options = ("steps", "guidance")

    def __init__(self, info, config: DiffusionConfig):
        super().__init__(info, config)
        self.conditional = bool(info.labelled and info.num_classes)  # conditional where the data has labels
        self.num_classes = info.num_classes if self.conditional else None
        self.latent_shape = (info.channels, info.height, info.width)
        self.net = UNet(info.channels, info.height, config.width, config.blocks, config.attention_size,
                        self.num_classes or 0)

    def optimizers(self):
        return {"net": torch.optim.AdamW(self.net.parameters(), lr=self.config.lr, betas=(0.9, 0.99),
                                         weight_decay=0.0)}

    def schedulers(self, optimizers):
        warmup = max(1, self.config.warmup_steps)
        return {"net": torch.optim.lr_scheduler.LambdaLR(optimizers["net"], lambda step: min(1.0, (step + 1) / warmup))}

    def training_step(self, images, labels, ctx):
        c = self.config
        n = images.shape[0]
        t = torch.rand(n, device=images.device)
        snr = logsnr(t, c.schedule).float().to(images.device)
        alpha, sigma = torch.sigmoid(snr).sqrt()[:, None, None, None], torch.sigmoid(-snr).sqrt()[:, None, None, None]
        noise = ctx.randn(*images.shape)
        noisy = alpha * images + sigma * noise
        target = alpha * noise - sigma * images if c.prediction == "v" else noise
        if self.conditional:
            dropped = torch.rand(n, device=images.device) < c.label_dropout
            labels = torch.where(dropped, torch.full_like(labels, self.num_classes), labels)
        with ctx.autocast():
            prediction = self.net(noisy, t, labels if self.conditional else None)
        error = (prediction.float() - target).pow(2).mean(dim=(1, 2, 3))
        weight = self.loss_weight(snr)
        loss = (weight * error).mean()
        ctx.optimize("net", loss)
        return {"loss": loss.detach(), "mse": error.mean().detach()}

    def loss_weight(self, snr: torch.Tensor) -> torch.Tensor:
        """min-SNR-gamma (Hang et al. 2023) written for the prediction target; 1 everywhere when min_snr is 0."""
        if not self.config.min_snr:
            return torch.ones_like(snr)
        ratio = snr.exp()
        clipped = torch.minimum(ratio, torch.full_like(ratio, self.config.min_snr))
        return clipped / (ratio + 1) if self.config.prediction == "v" else clipped / ratio

    def generator(self) -> nn.Module:
        c = self.config
        return DDIMSampler(self.net, c.steps, c.guidance, c.schedule, c.prediction, self.num_classes)
