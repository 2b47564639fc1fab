"""Registers genforge's built-in plugins. Imports nothing heavy: implementations load lazily."""

from genforge.core.hookspecs import hookimpl
from genforge.core.specs import BackendSpec, DatasetSpec, LoggerSpec, MetricSpec, ModelSpec

P = "genforge.plugins"


@hookimpl
def register_models(register):
    register(ModelSpec("dcgan", f"{P}.dcgan:DCGAN",
                       "DCGAN (Radford et al.): transposed-conv generator, conv discriminator"))
    register(ModelSpec("cgan", f"{P}.cgan:ConditionalGAN",
                       "conditional DCGAN: label embedding in G, projection discriminator"))
    register(ModelSpec("vae", f"{P}.vae:VAE", "convolutional VAE with Bernoulli or Gaussian likelihood"))
    register(ModelSpec("diffusion", f"{P}.diffusion:Diffusion",
                       "denoising diffusion U-Net, v-prediction, classifier-free guidance; the DDIM sampler exports "
                       "as one graph"))
    register(ModelSpec("inpaint", f"{P}.inpaint:Inpaint",
                       "restoration: fills a square hole (U-Net, L1 and adversarial losses); takes image and mask"))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("digits", f"{P}.digits:load",
                         "scikit-learn's 1,797 handwritten 8x8 digits, bundled (default)"))
    register(DatasetSpec("digits-distorted", f"{P}.digits_distorted:load",
                         "digits at 28x28 under random affine distortions, 5 per digit: harder, still offline"))
    register(DatasetSpec("shapes", f"{P}.shapes:load", "procedural coloured shapes, 4 classes, deterministic by seed"))
    register(DatasetSpec("image-folder", f"{P}.image_folder:load", "your own images: class subfolders or a flat folder",
                         labelled=True, offline=False))
    register(DatasetSpec("webdataset", f"{P}.webdataset_shards:load",
                         "WebDataset tar shards: a folder, a brace pattern or a URL (pip install "
                         "'genforge[webdataset]')", labelled=True, offline=False))
    register(DatasetSpec("mnist", f"{P}.mnist:load_mnist", "MNIST from IDX files in --data-dir (or --download)",
                         offline=False))
    register(DatasetSpec("fashion-mnist", f"{P}.mnist:load_fashion_mnist", "Fashion-MNIST from IDX files in --data-dir",
                         offline=False))
    register(DatasetSpec("cifar10", f"{P}.cifar10:load", "CIFAR-10 through torchvision (extra 'vision')",
                         offline=False))


@hookimpl
def register_metrics(register):
    E = f"{P}.metrics"
    register(MetricSpec("fd", f"{E}:metric_fd",
                        "Frechet distance in the feature classifier's space, with floor and ceiling",
                        applies_to=("labelled_data",)))
    register(MetricSpec("kid", f"{E}:metric_kid", "kernel distance (KID) in the feature classifier's space",
                        applies_to=("labelled_data",)))
    register(MetricSpec("cond_acc", f"{E}:metric_cond_acc", "share of samples classified as the label asked for",
                        applies_to=("conditional", "labelled_data"), higher_is_better=True))
    register(MetricSpec("neg_elbo", f"{E}:metric_vae", "test negative ELBO (nats/image) and reconstruction PSNR",
                        applies_to=("elbo", "reconstruct")))
    R = f"{P}.paired_metrics"
    register(MetricSpec("psnr", f"{R}:metric_psnr", "restored against clean images (dB), and the damaged input's",
                        applies_to=("restores",), higher_is_better=True))
    register(MetricSpec("psnr_masked", f"{R}:metric_psnr_masked", "psnr over the hole alone (models with a mask)",
                        applies_to=("restores", "masked"), higher_is_better=True))
    register(MetricSpec("ssim", f"{R}:metric_ssim", "structural similarity of restored and clean images",
                        applies_to=("restores",), higher_is_better=True))
    register(MetricSpec("ssim_masked", f"{R}:metric_ssim_masked", "ssim over the hole alone (models with a mask)",
                        applies_to=("restores", "masked"), higher_is_better=True))
    register(MetricSpec("inception", f"{E}:metric_inception",
                        "standard FID, KID and IS on Inception-v3 features (weights file supplied by the user)",
                        default=False, check=f"{E}:check_inception"))


@hookimpl
def register_backends(register):
    B = f"{P}.backends"
    register(BackendSpec("torch", f"{B}:TorchBackend", "PyTorch eager (CUDA when present)", targets=("run",)))
    register(BackendSpec("torch-bf16", f"{B}:TorchBf16Backend",
                         "PyTorch eager in bfloat16, channels_last (CPUs with AVX-512 BF16 or AMX; CUDA)",
                         targets=("run",)))
    register(BackendSpec("torch-compile", f"{B}:TorchCompileBackend",
                         "torch.compile (inductor); compiles first, which can take minutes: only when asked for",
                         targets=("run",), default=False))
    register(BackendSpec("ort-cpu", f"{B}:OrtBackend", "ONNX Runtime, CPU provider", targets=("onnx",)))
    register(BackendSpec("ort-cuda", f"{B}:OrtCudaBackend", "ONNX Runtime, CUDA provider", targets=("onnx",),
                         device="cuda"))
    register(BackendSpec("ort-trt", f"{B}:OrtTensorrtBackend", "ONNX Runtime, TensorRT provider", targets=("onnx",),
                         device="cuda"))
    register(BackendSpec("tensorrt", f"{B}:TensorrtBackend", "native TensorRT engine", targets=("engine",),
                         device="cuda"))


@hookimpl
def register_loggers(register):
    L = f"{P}.loggers"
    register(LoggerSpec("jsonl", f"{L}:JsonlLogger", "metrics.jsonl in the run directory (always on)"))
    register(LoggerSpec("csv", f"{L}:CsvLogger", "metrics.csv and eval.csv in the run directory",
                        files=("metrics.csv", "eval.csv")))
    register(LoggerSpec("tensorboard", f"{L}:TensorBoardLogger",
                        "TensorBoard event files in RUN/tensorboard: scalars, sample grids, hyperparameters",
                        requires=("tensorboard",), install_hint="pip install 'genforge[tensorboard]'",
                        files=("tensorboard",)))
    register(LoggerSpec("mlflow", f"{L}:MlflowLogger",
                        "an MLflow run (MLFLOW_TRACKING_URI, else a local store in RUN/mlruns): params, metrics, "
                        "sample grids and files", requires=("mlflow",), install_hint="pip install 'genforge[mlflow]'",
                        files=("mlruns",)))
