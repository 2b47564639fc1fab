"""genforge.core: the kernel. Contracts and registry (specs, hookspecs, registry, contract, model, data, step,
errors), shared ground (files, folders, limits, numerics, images, inputs, threads, signals, hardware), and
three wings: training/, evaluation/, runtime/. It knows no click and nothing of the application."""
