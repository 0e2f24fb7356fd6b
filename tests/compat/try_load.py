"""Try each ONNX file on the onnxruntime importable here (standalone script); print JSON file -> "ok" or the error."""

import json
import sys

import numpy as np
import onnxruntime as ort

result = {"onnxruntime": ort.__version__}
for path in sys.argv[1:]:
    try:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        sess.run(None, {i.name: np.zeros((2, i.shape[1]), np.float32) for i in sess.get_inputs()})
        result[path] = "ok"
    except Exception as exc:  # onnxruntime's own untyped errors: the refusal is the result
        result[path] = str(exc).strip().splitlines()[0][:200]
print(json.dumps(result))
