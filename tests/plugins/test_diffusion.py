"""The built-in diffusion model: training, resume, the DDIM sampler as the generator, its sampling options, the
unrolled one-graph ONNX export (parity, metadata, no Loop), int8 behind the quality gate, and the plugin kit."""

import json

import numpy as np
import onnx
import pytest
import torch

import genforge
from genforge.core.data import DataInfo
from genforge.core.errors import UserError
from genforge.exporters.onnx import export_onnx
from genforge.plugins.diffusion import DDIMSampler, Diffusion, DiffusionConfig, alpha_sigma


@pytest.fixture(scope="module")
def diffusion_run(train_small, tmp_path_factory):
    return train_small(tmp_path_factory.mktemp("diffusion") / "run", model="diffusion", steps=6).out


def metadata(path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def test_conditional_on_labels_unconditional_without():
    labelled = Diffusion(DataInfo("digits", 1, 16, 16, 10), DiffusionConfig(width=8))
    unlabelled = Diffusion(DataInfo("faces", 3, 16, 16), DiffusionConfig(width=8))
    assert labelled.conditional and labelled.latent_shape == (1, 16, 16)
    assert not unlabelled.conditional and unlabelled.net.classes is None
    images = unlabelled.generator()(torch.randn(2, 3, 16, 16))
    assert images.shape == (2, 3, 16, 16) and images.abs().max() <= 1


@pytest.mark.parametrize("guidance, passes", [(1.0, 1), (2.0, 2)])
def test_guidance_doubles_the_batch_only_when_it_mixes(guidance, passes):
    model = Diffusion(DataInfo("digits", 1, 16, 16, 10), DiffusionConfig(width=8, steps=4, guidance=guidance))
    batches = []
    model.net.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    model.generator()(torch.randn(3, 1, 16, 16), torch.tensor([0, 1, 2], dtype=torch.int32))
    assert batches == [3 * passes] * 4


def test_the_sampler_is_its_schedule_and_ends_on_the_clean_estimate():
    sampler = Diffusion(DataInfo("digits", 1, 16, 16, 10), DiffusionConfig(width=8, steps=5)).generator()
    schedule = sampler.schedule()
    assert len(schedule) == 5 and schedule[0][0] == 1.0 and schedule[-1][3:] == (1.0, 0.0)
    alpha, sigma = (float(v) for v in alpha_sigma(0.4, "cosine"))
    assert abs(alpha ** 2 + sigma ** 2 - 1) < 1e-6
    z, labels = torch.randn(2, 1, 16, 16), torch.tensor([3, 4], dtype=torch.int32)
    assert torch.equal(sampler(z, labels), sampler(z, labels))  # no noise drawn inside: deterministic


def test_trains_resumes_and_samples_with_other_sampling_options(diffusion_run):
    log = [json.loads(line) for line in (diffusion_run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in log if "loss" in r)
    run = genforge.train(resume=diffusion_run, steps=8, progress=False)
    assert run.trained["step"] == 8
    default = genforge.sample(diffusion_run, n=4, seed=1)
    fewer = genforge.sample(diffusion_run, n=4, seed=1, sampling={"steps": 2})
    assert default.images.shape == fewer.images.shape == (4, 1, 16, 16)
    assert not np.array_equal(default.images, fewer.images)
    with pytest.raises(UserError, match="width is not a sampling option of this model"):
        genforge.sample(diffusion_run, n=2, sampling={"width": 4})


def test_export_is_one_graph_matching_pytorch_and_runs_on_onnx_runtime_alone(diffusion_run, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "sampler.onnx"
    report = export_onnx(diffusion_run, path, sampling={"steps": 4, "guidance": 2.0})
    assert all(check["ok"] and check["psnr_db"] > 60 for check in report.checks)
    graph = onnx.load(str(path)).graph
    ops = [node.op_type for node in graph.node]
    assert "Loop" not in ops and "Scan" not in ops
    assert [i.name for i in graph.input] == ["z", "labels"] and [o.name for o in graph.output] == ["images"]
    convs_per_step = sum(isinstance(m, torch.nn.Conv2d) for m in genforge.load(diffusion_run).generator.modules())
    assert ops.count("Conv") == 4 * convs_per_step  # four steps unrolled, each a whole network pass
    assert json.loads(metadata(path)["sampling"]) == {"steps": 4, "guidance": 2.0}
    assert json.loads(metadata(path)["model_options"])["schedule"] == "cosine"

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((3, 1, 16, 16), dtype=np.float32)
    labels = np.array([0, 5, 9], dtype=np.int32)
    images = session.run(["images"], {"z": z, "labels": labels})[0]
    reference = genforge.load(diffusion_run, sampling={"steps": 4, "guidance": 2.0}).generate(z=z, labels=labels)
    assert np.abs(images - reference).max() < 1e-4
    with pytest.raises(UserError, match="carries its sampling options inside"):
        genforge.load(path, sampling={"steps": 2})


@pytest.mark.slow
@pytest.mark.parametrize("precision, target", [("fp16", "cpu"), ("int8", "cpu"), ("int8", "tensorrt")])
def test_reduced_precisions_pass_the_quality_gate(diffusion_run, tmp_path, precision, target):
    from genforge.app.export import export_gated
    from genforge.exporters.qdq import tensorrt_qdq_problems

    path = tmp_path / f"sampler-{precision}.onnx"
    report = export_gated(diffusion_run, path, precision=precision, target=target, quality_samples=200)
    assert report.quality["ok"] and report.quality["n"] == 200
    model = onnx.load(str(path))
    if precision == "int8":
        assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in model.graph.node}
        assert target == "cpu" or not tensorrt_qdq_problems(model)
    assert metadata(path)["precision"] == precision


def test_bf16_runtime_runs_the_network_in_bf16_and_the_sampler_in_fp32(diffusion_run):
    from genforge.core.hardware import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has neither AVX-512 BF16 nor AMX: bf16 is refused here (tested elsewhere)")
    generator = genforge.load(diffusion_run, precision="bf16")
    assert generator.psnr_db >= 35
    assert generator.generate(n=2, seed=0).dtype == np.float32


def test_cli_sampling_option(diffusion_run, tmp_path):
    from click.testing import CliRunner

    from genforge.app.cli import cli

    result = CliRunner().invoke(cli, ["sample", str(diffusion_run), "--n", "4", "--sampling", "steps=2",
                                      "--out", str(tmp_path / "grid.png")])
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(cli, ["sample", str(diffusion_run), "--sampling", "steps", "--out",
                                   str(tmp_path / "bad.png")])
    assert bad.exit_code == 2 and "--sampling 'steps' must look like key=value" in bad.output


def test_options_are_checked():
    with pytest.raises(ValueError, match="prediction"):
        DiffusionConfig(prediction="x")
    with pytest.raises(ValueError, match="guidance"):
        DiffusionConfig(guidance=float("nan"))
    assert isinstance(Diffusion(DataInfo("digits", 1, 32, 32, 10), DiffusionConfig(width=8)).generator(),
                      DDIMSampler)


@pytest.mark.slow
def test_the_plugin_kit_accepts_the_built_in_diffusion_model(tmp_path):
    from genforge.testing import check_model_plugin

    report = check_model_plugin("diffusion", model_options={"width": 8, "steps": 2}, workdir=tmp_path)
    assert any("int8" in step for step in report.steps)


@pytest.mark.slow
def test_genforge_run_with_the_diffusion_model(tmp_path):
    from genforge.app.pipeline import load_pipeline

    assert load_pipeline(None, "diffusion")["train"]["model_options"] == {}  # not dcgan's widths
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text('[train]\nmodel = "diffusion"\nsteps = 4\nimage_size = 16\nsample_every = 0\n'
                        'model_options = { width = 8, steps = 2 }\n'
                        '[evaluate]\nn = 50\n[export]\nprecisions = ["fp32"]\n'
                        '[bench]\nbatches = [1]\nwarmup_s = 0.05\nduration_s = 0.1\nmin_iters = 2\n')
    assert load_pipeline(pipeline, "diffusion")["train"]["model_options"] == {"width": 8, "steps": 2}
    assert load_pipeline(pipeline, "cgan")["train"]["model_options"] == {}  # diffusion's options are not cgan's
    result = genforge.run_pipeline(pipeline, out=tmp_path / "report", model="diffusion", echo=lambda *a: None)
    assert result.report["train_config"]["model"] == "diffusion"
    assert "cond_acc" in result.report["quality"] and (tmp_path / "report" / "index.html").exists()
    assert {row["backend"] for row in result.report["bench"] if row["status"] == "ok"} >= {"torch", "ort-cpu"}


@pytest.mark.slow
def test_int8_that_fails_the_gate_is_retried_with_its_edge_layers_in_float(diffusion_run, tmp_path):
    from genforge.core.errors import ValidationFailed

    calls = []

    def gate(path, loaded):  # refuses the first (fully int8) file, as a failing FD gate would
        calls.append(len(calls))
        if len(calls) == 1:
            raise ValidationFailed("int8 raises FD past the gate")
        return {"ok": True}

    path = tmp_path / "sampler-int8.onnx"
    report = export_onnx(diffusion_run, path, precision="int8", accept=gate)
    assert calls == [0, 1] and report.float_layers
    assert json.loads(metadata(path)["int8_float_layers"]) == report.float_layers
    graph = onnx.load(str(path)).graph
    float_nodes = [n for n in graph.node if n.name in set(report.float_layers)]
    assert float_nodes and {"Conv", "MatMul"} <= {n.op_type for n in float_nodes}
    weights = {i.name: i.data_type for i in graph.initializer}
    assert all(weights[n.input[1]] == onnx.TensorProto.FLOAT for n in float_nodes if n.op_type == "Conv")
    with pytest.raises(ValidationFailed, match="past the gate"):
        export_onnx(diffusion_run, tmp_path / "never.onnx", precision="int8",
                    accept=lambda path, loaded: (_ for _ in ()).throw(ValidationFailed("past the gate")))
    assert not (tmp_path / "never.onnx").exists()
