"""genforge.exporters: ONNX export (onnx.py), its precision table (precisions.py) and converters (convert.py),
exact rewrites (rewrite.py), TensorRT's Q/DQ rules (qdq.py) and engine builds (tensorrt.py). Exporters write
and check files; they import no metric (the quality gate is the application's)."""
