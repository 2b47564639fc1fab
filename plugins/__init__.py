"""genforge.plugins: the built-in model, dataset, metric and backend plugins.

builtin.py registers them through the same hooks a third-party plugin uses; each
implementation lives in its own module and is imported only when used.
"""
