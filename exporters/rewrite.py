"""Exact export-time rewrites of a generator, for runtimes without fast transposed convolutions.

ONNX Runtime's CPU provider has no int8 ConvTranspose kernel, so a quantized DCGAN spends
its time in fp32 ConvTranspose between Q/DQ pairs. These identities remove them:

* ConvTranspose(k=4, s=2, p=1): output pixel (2m+a, 2n+b) sees input rows m-1..m+1 through
  the taps {a=0: k3 at -1, k1 at 0; a=1: k2 at 0, k0 at +1}, and the same for columns.
  - "split" form: four 2x2 Convs, one per output phase (a, b), each padded on its own side,
    then interleaved. Exactly the multiply-adds of the original. (A single 2x2 Conv with 4x
    the outputs costs (H+1)(W+1)/HW the multiply-adds, a 3x3 sub-pixel Conv 2.25x; both were
    measured slower and are not kept.)
  - "auto" (default): "split" where the layer has 8 or more output channels; a narrower one
    (the RGB layer) stays a ConvTranspose, which ran faster there in fp32 and int8 than any
    form (Convs with 3 outputs keep few SIMD lanes busy). On ONNX Runtime CPU this beat the
    plain graph in fp32 and in int8 (benchmarks/scripts/onnx_vs_torch.py; figures in README).
* ConvTranspose(k, s=1, p=0) on a 1x1 input == a Linear layer reshaped to (C, k, k).

BatchNorm (eval) directly after a rewritten layer is folded into it; a pointwise activation
after that moves inside the replacement, ahead of its reshape or interleave. `rewrite_generator`
returns a new module; callers check it against the original (see exporters/onnx.py).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

# 2x2 window tap (offset a - 1, a) -> transposed-conv kernel index, per output phase a
PHASE_TAPS_2 = {0: (3, 1), 1: (2, 0)}
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))
FORMS = ("auto", "split")
INTERLEAVES = ("transpose", "concat")
POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)


def conv_with(weight: torch.Tensor, bias: torch.Tensor, padding: int = 1) -> nn.Conv2d:
    """A Conv2d holding the given weights (out, in, k, k) and bias."""
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[-1], 1, padding, bias=True)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


class SplitPhaseConv(nn.Module):
    """ConvTranspose(k=4, s=2, p=1) as four 2x2 convolutions, one per output phase (a, b): phase
    a=0 reads input rows m-1..m (padded above), a=1 rows m..m+1 (padded below); columns alike."""

    def __init__(self, weights: list[torch.Tensor], bias: torch.Tensor, interleave: str = "transpose"):
        super().__init__()
        self.convs = nn.ModuleList(conv_with(w, bias, padding=0) for w in weights)
        self.pads = [(1 - b, b, 1 - a, a) for a, b in PHASES]  # F.pad order: left, right, top, bottom
        self.activation = nn.Identity()
        self.interleave = interleave

    def forward(self, x):
        phases = [self.activation(conv(F.pad(x, pad))) for conv, pad in zip(self.convs, self.pads)]
        return interleave_phases(phases, self.interleave)


def interleave_phases(phases: list[torch.Tensor], by: str = "transpose") -> torch.Tensor:
    """Four (N, C, H, W) phases in PHASES order -> (N, C, 2H, 2W) with phase (a, b) at (2m+a, 2n+b).

    Two equal graphs: "concat" (columns by stacking on a new last axis, then rows by joining
    along W and reshaping) ran faster in fp32 on ONNX Runtime CPU; "transpose" in int8."""
    n, c, h, w = phases[0].shape
    if by == "concat":
        rows = [torch.stack(phases[2 * a:2 * a + 2], -1).reshape(n, c, h, 2 * w) for a in (0, 1)]
        return torch.cat(rows, 3).reshape(n, c, 2 * h, 2 * w)
    # Rows, then columns: two transposes that each move one axis, which ONNX Runtime runs far faster
    # than the 6-D transpose of DepthToSpace (and on uint8 in the int8 graph). cat, not stack: no
    # Unsqueeze nodes, which cost ~20 us each at batch 1.
    t = torch.cat(phases, 1).view(n, 2, 2, c, h, w).permute(0, 2, 3, 4, 1, 5).reshape(n, 2, c, 2 * h, w)
    return t.permute(0, 2, 3, 4, 1).reshape(n, c, 2 * h, 2 * w)


class LatentLinear(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, out_channels: int, size: int):
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)
        self.out_channels, self.size = out_channels, size
        self.activation = nn.Identity()

    def forward(self, x):
        return self.activation(self.linear(x.flatten(1))).view(-1, self.out_channels, self.size, self.size)


def _bn_scale_shift(bn: nn.BatchNorm2d | None, channels: int):
    if bn is None:
        return torch.ones(channels), torch.zeros(channels)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias.detach() - bn.running_mean * scale


def _phase_weights(convt: nn.ConvTranspose2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(4, Cout, Cin, 2, 2) weights of the four phases' 2x2 convolutions, BatchNorm folded; and the bias."""
    w = convt.weight.detach()  # (Cin, Cout, 4, 4)
    cin, cout = w.shape[:2]
    scale, shift = _bn_scale_shift(bn, cout)
    bias = convt.bias.detach() if convt.bias is not None else torch.zeros(cout)
    weight = torch.zeros(4, cout, cin, 2, 2)
    for p, (a, b) in enumerate(PHASES):
        for th, kh in enumerate(PHASE_TAPS_2[a]):
            for tw, kw in enumerate(PHASE_TAPS_2[b]):
                weight[p, :, :, th, tw] = w[:, :, kh, kw].t()
    return weight * scale.view(1, cout, 1, 1, 1), bias * scale + shift


def splitphase_from(convt: nn.ConvTranspose2d, bn: nn.BatchNorm2d | None,
                    interleave: str = "transpose") -> SplitPhaseConv:
    weight, bias = _phase_weights(convt, bn)
    return SplitPhaseConv(list(weight), bias, interleave)


def linear_from(convt: nn.ConvTranspose2d, bn: nn.BatchNorm2d | None) -> LatentLinear:
    w = convt.weight.detach()  # (Cin, Cout, k, k)
    cin, cout, k = w.shape[0], w.shape[1], w.shape[2]
    scale, shift = _bn_scale_shift(bn, cout)
    bias = convt.bias.detach() if convt.bias is not None else torch.zeros(cout)
    weight = (w * scale.view(1, cout, 1, 1)).reshape(cin, cout * k * k).t()
    new_bias = (bias * scale + shift).repeat_interleave(k * k)
    return LatentLinear(weight.contiguous(), new_bias, cout, k)


def _is_subpixel(m: nn.ConvTranspose2d) -> bool:
    return (m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) and m.output_padding == (0, 0)
            and m.groups == 1 and m.dilation == (1, 1))


def _input_sizes(generator: nn.Module, example_inputs: tuple) -> dict[int, tuple[int, int]]:
    sizes, hooks = {}, []
    for module in generator.modules():
        if isinstance(module, nn.ConvTranspose2d):
            hooks.append(module.register_forward_pre_hook(
                lambda mod, args: sizes.__setitem__(id(mod), tuple(args[0].shape[-2:]))))
    with torch.no_grad():
        generator(*example_inputs)
    for hook in hooks:
        hook.remove()
    return sizes


def rewrite_generator(generator: nn.Module, example_inputs: tuple, form: str = "auto",
                      interleave: str = "transpose") -> tuple[nn.Module, int]:
    """A copy of `generator` (eval) with rewritable ConvTranspose2d (+BatchNorm) layers replaced;
    `interleave` picks the graph of the "split" form's phase interleave (see interleave_phases)."""
    if form not in FORMS or interleave not in INTERLEAVES:
        raise ValueError(f"unknown rewrite {form!r}/{interleave!r}; forms {FORMS}, interleaves {INTERLEAVES}")
    generator = copy.deepcopy(generator).eval()
    sizes = _input_sizes(generator, example_inputs)
    count = 0
    for parent in list(generator.modules()):
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent)
        for i, layer in enumerate(children):
            if not isinstance(layer, nn.ConvTranspose2d) or id(layer) not in sizes:
                continue
            bn = children[i + 1] if i + 1 < len(children) and isinstance(children[i + 1], nn.BatchNorm2d) else None
            if _is_subpixel(layer):
                if form == "auto" and layer.out_channels < 8:
                    continue
                replacement = splitphase_from(layer, bn, interleave)
            elif sizes[id(layer)] == (1, 1) and layer.stride == (1, 1) and layer.padding == (0, 0):
                replacement = linear_from(layer, bn)
            else:
                continue
            parent[i] = replacement
            if bn is not None:
                parent[i + 1] = nn.Identity()
            after = i + 1 + (bn is not None)
            if after < len(children) and isinstance(children[after], POINTWISE):
                # a pointwise activation commutes with reshapes and interleaves; moved ahead of them,
                # runtimes fuse it into the Conv or Gemm
                replacement.activation, parent[after] = children[after], nn.Identity()
            count += 1
    return generator, count


def max_difference(a: nn.Module, b: nn.Module, inputs: tuple) -> float:
    with torch.no_grad():
        return float((a(*inputs) - b(*inputs)).abs().max())


