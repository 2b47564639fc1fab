"""The application layer: the CLI, `genforge run`, its report and evaluation orchestration.

The only layer that imports across exporters/ and benchmarks/ (see tests/test_layers.py).
"""
