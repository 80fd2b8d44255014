"""Runs the official ONNX checker (full_check: shape inference too) on a model file. Prints 'ok opset N'."""
import sys

import onnx

model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
print("ok opset", model.opset_import[0].version, "ir", model.ir_version)
