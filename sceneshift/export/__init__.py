"""Export: a trained run as a deployable model file (ONNX for onnxruntime, fp32 or int8)."""
