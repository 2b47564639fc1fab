"""Run an exported .onnx generator on ONNX Runtime from its metadata alone."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from genforge import __version__
from genforge.core.compute import check_threads, decide
from genforge.core.errors import UserError
from genforge.core.runtime.base import GeneratorRuntime, read_generator_metadata

log = logging.getLogger("genforge.runtime")
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


UNBOUNDED_OPS = ("Loop", "Scan")  # their trip count is data: a file could run for ever


def refuse_unbounded_graph(path: Path) -> None:
    """genforge's generators are feed-forward graphs; a Loop or Scan node (anywhere) could run without bound."""
    import onnx  # lazy: the ONNX protobuf parser is only needed to open .onnx files

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  protobuf raises several types for files that are not ONNX
        raise UserError(f"{path} is not a valid ONNX model (truncated or not ONNX): {type(exc).__name__}") from None
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            if node.op_type in UNBOUNDED_OPS:
                raise UserError(f"{path} contains a {node.op_type} node ({node.name or 'unnamed'}), which genforge "
                                "does not run: its generators are feed-forward; export it again with genforge")
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    graphs.append(attribute.g)
                graphs.extend(attribute.graphs)


class OnnxRuntime(GeneratorRuntime):
    def __init__(self, path, provider: str = "cpu", threads: int | None = None, provider_options: dict | None = None):
        import onnxruntime as ort  # lazy: onnxruntime is an extra (cpu or gpu build)

        path = Path(path)
        if provider not in PROVIDERS:
            raise UserError(f"unknown provider {provider!r}; use {', '.join(PROVIDERS)}")
        if not path.is_file() or path.stat().st_size == 0:
            raise UserError(f"{path} is empty or missing; export it again with `genforge export onnx`")
        refuse_unbounded_graph(path)
        wanted = PROVIDERS[provider]
        if provider != "cpu" and hasattr(ort, "preload_dlls"):
            with contextlib.suppress(Exception):  # CUDA and cuDNN from the nvidia-* wheels, when they are there
                ort.preload_dlls()
        available = set(ort.get_available_providers())
        if wanted[0] not in available:
            log.warning("ONNX Runtime provider %s is not available here (%s); falling back to CPU",
                        wanted[0], ", ".join(sorted(available)))
            wanted = ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = check_threads(threads) or decide().threads  # never more than the free cores
        providers = [(wanted[0], provider_options)] + wanted[1:] if provider_options and len(wanted) > 1 else wanted
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001  ORT raises several types for unreadable files
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            if wanted != ["CPUExecutionProvider"] and "Protobuf" not in reason and "parsing" not in reason:
                log.warning("provider %s could not start (%s); falling back to CPU", wanted[0], reason)
                self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            else:
                raise UserError(f"{path} is not a valid ONNX model (truncated or not ONNX): {reason}") from None
        self.provider = self.session.get_providers()[0]
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if "genforge_version" not in meta:
            raise UserError(f"{path} has no genforge metadata; export it with `genforge export onnx`")
        if _version_tuple(meta["genforge_version"]) > _version_tuple(__version__):
            raise UserError(f"{path} was made by genforge {meta['genforge_version']}, newer than this "
                            f"{__version__}; upgrade genforge")
        self.signature, self.image_shape = read_generator_metadata(meta, path)
        self.metadata = meta
        self.path = path
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.check_graph_matches_metadata()
        batch = meta.get("batch", "dynamic")
        self.fixed_batch = int(batch) if batch.isdigit() else None

    def check_graph_matches_metadata(self) -> None:
        """The graph's real inputs and output against what the metadata says (a file can lie)."""
        expected = self.signature.input_names
        if self.input_names != expected:
            raise UserError(f"{self.path} has inputs {self.input_names}, but its metadata says {expected}; "
                            "export it again")
        z = self.session.get_inputs()[0]
        if len(z.shape) != 1 + len(self.latent_shape) or [d for d in z.shape[1:]] != list(self.latent_shape):
            raise UserError(f"{self.path}'s input z has shape {z.shape}, but its metadata says latent_shape "
                            f"{list(self.latent_shape)}; export it again")
        graph_inputs = {i.name: i.shape for i in self.session.get_inputs()}
        for spec in self.signature.images:
            if [d for d in graph_inputs[spec.name][1:]] != list(spec.shape):
                raise UserError(f"{self.path}'s input {spec.name} has shape {graph_inputs[spec.name]}, but its "
                                f"metadata says {list(spec.shape)}; export it again")
        outputs = self.session.get_outputs()
        if [o.name for o in outputs] != ["images"]:
            raise UserError(f"{self.path} has outputs {[o.name for o in outputs]}, not ['images']; export it again")
        shape = outputs[0].shape
        fixed = [d for d in shape[1:] if isinstance(d, int)]
        if len(shape) != 4 or (len(fixed) == 3 and fixed != list(self.image_shape)):
            raise UserError(f"{self.path}'s output has shape {shape}, but its metadata says image_shape "
                            f"{list(self.image_shape)}; export it again")

    def run(self, z: np.ndarray, labels: np.ndarray | None, images=()) -> np.ndarray:
        if self.fixed_batch and len(z) != self.fixed_batch:
            raise UserError(f"{self.path.name} was exported for batch {self.fixed_batch}, not {len(z)}; "
                            "export with --batch dynamic")
        feed = {"z": z}
        if labels is not None:
            feed["labels"] = labels
        feed.update({spec.name: value for spec, value in zip(self.signature.images, images)})
        try:
            images = self.session.run(["images"], feed)[0]
        except Exception as exc:  # noqa: BLE001  ONNX Runtime raises its own types for bad inputs
            reason = " ".join(str(exc).split())[:200]
            raise UserError(f"{self.path.name} failed on inputs of batch {len(z)} ({reason}); its graph does not "
                            "match its genforge metadata: export it again") from None
        if images.shape != (len(z), *self.image_shape):
            raise UserError(f"{self.path.name} returned images of shape {images.shape}, but its metadata says "
                            f"{list(self.image_shape)}; export it again")
        return images
