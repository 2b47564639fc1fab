"""Multiply-accumulate counts of a generator's forward pass, from forward hooks on its layers."""

from __future__ import annotations

import torch
from torch import nn


def count_macs(module: nn.Module, inputs: tuple) -> int:
    """MACs of one forward pass over `inputs` (convolutions, transposed convolutions, linear layers)."""
    total = 0

    def conv_hook(layer, args, output):
        nonlocal total
        kernel = layer.weight.shape[2] * layer.weight.shape[3]
        if isinstance(layer, nn.ConvTranspose2d):
            x = args[0]
            total += x.numel() * layer.out_channels // layer.groups * kernel
        else:
            total += output.numel() * layer.in_channels // layer.groups * kernel

    def linear_hook(layer, args, output):
        nonlocal total
        total += output.numel() * layer.in_features

    hooks = []
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            hooks.append(layer.register_forward_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            hooks.append(layer.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return total
