"""genforge.exporters: ONNX export and its precision variants, TensorRT engines, and the runtime API."""
