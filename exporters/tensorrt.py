"""TensorRT engines built from genforge's ONNX files (TensorRT 10 and 11 APIs).

    genforge export tensorrt model.onnx --out model.engine [--min-batch 1 --opt-batch 16 --max-batch 64]

The network is strongly typed: precision comes from the ONNX itself (fp32, fp16, or int8
Q/DQ), which is the only way TensorRT 11 works (it removed the FP16/INT8 builder flags and
calibrators). Beside the engine, a JSON sidecar holds the ONNX metadata plus the TensorRT
version, the GPU and the optimization profile; an engine is refused on another TensorRT
version or GPU, with a message saying to rebuild it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genforge.core.errors import UserError
from genforge.core.files import write_atomic, write_json
from genforge.core.runtime.onnx import OnnxRuntime
from genforge.core.runtime.tensorrt import sidecar_path, tensorrt_module
from genforge.exporters.precisions import PRECISIONS
from genforge.exporters.qdq import tensorrt_qdq_problems


def profile_shapes(latent_shape, min_batch: int, opt_batch: int, max_batch: int) -> dict:
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise UserError(f"batch profile must satisfy 1 <= min ({min_batch}) <= opt ({opt_batch}) <= max ({max_batch})")
    return {"min": [min_batch, *latent_shape], "opt": [opt_batch, *latent_shape], "max": [max_batch, *latent_shape]}


def check_tensorrt_ready(onnx_path: Path) -> None:
    """An int8 file must be the TensorRT-flavoured one (symmetric int8 Q/DQ): refused in one line otherwise,
    before TensorRT or a GPU is needed."""
    import onnx  # lazy: only building engines reads the ONNX graph here

    if not onnx_path.is_file():
        raise UserError(f"{onnx_path} does not exist; export it with `genforge export onnx`")
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  protobuf raises several types for files that are not ONNX
        raise UserError(f"{onnx_path} is not a valid ONNX model: {type(exc).__name__}") from None
    meta = {p.key: p.value for p in model.metadata_props}
    row = PRECISIONS.get(meta.get("precision", ""))
    if row is None or not row.has_targets:  # only int8 files are made for one target
        return
    export_again = (f"export it again with `genforge export onnx RUN --precision int8 --target tensorrt --out "
                    f"{onnx_path.stem}-trt.onnx`")
    if meta.get("int8_target") != "tensorrt":
        raise UserError(f"{onnx_path.name} is int8 for ONNX Runtime on CPUs (uint8 asymmetric activations), which "
                        f"TensorRT rejects; {export_again}")
    problems = tensorrt_qdq_problems(model)
    if problems:
        raise UserError(f"{onnx_path.name} breaks TensorRT's Q/DQ rules ({problems[0]}); {export_again}")


def build_engine(onnx_path, out, min_batch=1, opt_batch=16, max_batch=64, workspace_gib=4.0,
                 timing_cache: Path | None = None) -> dict:
    """Parse the ONNX into a strongly typed network, build with one profile, write engine + sidecar."""
    check_tensorrt_ready(Path(onnx_path))
    trt = tensorrt_module()
    onnx_path, out = Path(onnx_path), Path(out)
    source = OnnxRuntime(onnx_path, "cpu")  # validates the file and its metadata
    profile_spec = profile_shapes(source.latent_shape, min_batch, opt_batch, max_batch)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.exists() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    profile.set_shape("z", min=profile_spec["min"], opt=profile_spec["opt"], max=profile_spec["max"])
    if source.num_classes:
        profile.set_shape("labels", min=[min_batch], opt=[opt_batch], max=[max_batch])
    for spec in source.signature.images:  # a restoration model's image inputs share the batch profile
        shapes = profile_shapes(spec.shape, min_batch, opt_batch, max_batch)
        profile.set_shape(spec.name, min=shapes["min"], opt=shapes["opt"], max=shapes["max"])
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise UserError(f"TensorRT failed to build an engine from {onnx_path.name} (see the log above)")
    if timing_cache:
        write_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    sidecar = {**source.metadata, "tensorrt_version": trt.__version__, "gpu": torch.cuda.get_device_name(0),
               "profile": profile_spec, "source_onnx": onnx_path.name}
    write_atomic(out, bytes(plan))
    write_json(sidecar_path(out), sidecar, indent=1)
    return sidecar
