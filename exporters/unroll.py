"""Iterative generators (a diffusion sampler) as one ONNX graph: one step exported, repeated in the graph.

A generator that exposes `schedule()` (one tuple of float constants per step) and `step(x, labels,
constants)` (core/model.py) is exported as a single step whose constants are an input, then the step's
nodes are copied once per step with that step's constants as initializers, each copy reading the
previous one's output. The weights are shared by every copy. The file has the generator's usual inputs
(z, labels) and output (images) and no Loop or Scan, so every consumer runs it unchanged; exporting N
steps costs one step's export instead of N (tracing and optimising an unrolled 20-step U-Net takes
minutes on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

STEP_INPUT = "step_constants"


def is_iterative(generator: torch.nn.Module) -> bool:
    return callable(getattr(generator, "schedule", None)) and callable(getattr(generator, "step", None))


class Step(torch.nn.Module):
    """One step of an unconditional iterative generator, its constants an input: (z, constants) -> next z."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z, step_constants):
        return self.generator.step(z, None, step_constants).float()


class ConditionalStep(Step):
    """(z, labels, constants) -> next z."""

    def forward(self, z, labels, step_constants):
        return self.generator.step(z, labels, step_constants).float()


def step_module(generator: torch.nn.Module, conditional: bool) -> torch.nn.Module:
    return (ConditionalStep if conditional else Step)(generator).eval()


def step_constants(generator: torch.nn.Module) -> list[np.ndarray]:
    return [np.asarray(constants, dtype=np.float32) for constants in generator.schedule()]


def repeat_step(step_file: Path, out: Path, schedule: list[np.ndarray]) -> None:
    """The step graph in `step_file` repeated over `schedule`, written to `out` (inputs z[, labels], output images)."""
    step = onnx.load(str(step_file))
    graph = step.graph
    shared = {i.name for i in graph.initializer} | {i.name for i in graph.input if i.name != "z"} - {STEP_INPUT}
    (output,) = graph.output
    nodes, constants, current = [], [], "z"
    for index, values in enumerate(schedule):
        last = index == len(schedule) - 1
        names = {"z": current, STEP_INPUT: f"{STEP_INPUT}_{index}", output.name: "images" if last else
                 f"{output.name}_step{index}"}

        def renamed(name: str, index=index, names=names) -> str:
            if not name or name in shared:
                return name
            return names.get(name, f"{name}_step{index}")

        for node in graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = f"{node.name}_step{index}" if node.name else ""
            del copy.metadata_props[:]  # the tracer's stack traces, repeated per step, would triple the file
            copy.doc_string = ""
            copy.input[:] = [renamed(name) for name in node.input]
            copy.output[:] = [renamed(name) for name in node.output]
            nodes.append(copy)
        constants.append(numpy_helper.from_array(values, f"{STEP_INPUT}_{index}"))
        current = names[output.name]
    inputs = [i for i in graph.input if i.name != STEP_INPUT]
    images = onnx.ValueInfoProto()
    images.CopyFrom(output)
    images.name = "images"
    unrolled = onnx.helper.make_graph(nodes, graph.name, inputs, [images], list(graph.initializer) + constants)
    model = onnx.helper.make_model(unrolled, opset_imports=step.opset_import, ir_version=step.ir_version,
                                   functions=step.functions)
    onnx.save(model, str(out))
