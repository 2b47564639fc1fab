"""genforge.app: the application. The CLI (cli*.py), `genforge run` (pipeline.py) and its report
(report.py, charts.py), export with the quality gate (export.py), the benchmark suite (suite.py),
`--nproc` (launch.py) and the plugin scaffold (scaffold.py).

The only layer that imports across core/, plugins/, exporters/ and benchmarks/ (tests/properties/test_layers.py).
"""
