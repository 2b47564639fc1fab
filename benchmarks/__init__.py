"""genforge.benchmarks: measuring (measure.py), statistics and compare; suites/ and baselines/.

The scripts beside this file (cli_startup.py, data_loading.py, trainer_throughput.py, ...)
are run directly: `python benchmarks/NAME.py`. Each prints its figures.
"""
