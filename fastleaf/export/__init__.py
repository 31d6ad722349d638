"""Exported models: ``exporter`` (torch: a run -> ONNX or TorchScript, checked for parity),
``model_info`` (the metadata record and the photo preprocessing, free of torch) and
``onnx_runtime`` (inference through ONNX Runtime, free of torch)."""
