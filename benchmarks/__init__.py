"""genforge.benchmarks: the measuring library. measure.py times every target x backend x batch, stats.py
summarizes and compares raw samples, rows.py lays out the table, environment.py records the machine;
baselines/ holds reference reports.

benchmarks/scripts/ (not part of the package) holds the scripts that print the figures quoted in the
README: `python benchmarks/scripts/NAME.py`.
"""
