"""A benchmark backend that spins for a known time (installed by tests/app/test_bench.py)."""

import time

import numpy as np

from genforge import BackendSpec, PreparedCall, hookimpl

BASE_S = 0.002


class SpinCall(PreparedCall):
    def __init__(self, seconds, seed):
        self.seconds, self.rng = seconds, np.random.default_rng(seed)
        self.macs_per_image = 1_000_000

    def call(self):
        end = time.perf_counter() + self.seconds * self.rng.lognormal(0.0, 0.05)
        while time.perf_counter() < end:
            pass


class FakeBackend:
    def skip_reason(self, target):
        return None if target.kind == "onnx" else "fake backend wants an .onnx"

    def prepare(self, target, batch, threads=None):
        slow = 1.25 if "slow" in target.name or target.path.read_bytes().startswith(b"slow") else 1.0
        return SpinCall(BASE_S * slow * (1 + batch / 64), seed=hash(target.name) % 1000)


@hookimpl
def register_backends(register):
    register(BackendSpec("fake", "fake_backend_plugin:FakeBackend", "spins for a known time", targets=("onnx",)))
