"""The written contract between the service and the served model.

docs/model-contract.md explains it in prose; this module is its single source in code.
Every config under model_repository/idetex_lite/ must match these names, dtypes and shapes.
"""

from __future__ import annotations

from typing import Final

MODEL_NAME: Final = "idetex_lite"
MODEL_VERSION: Final = "1"

INPUT_SIZE: Final = 320  # square model input, pixels
GRID: Final = INPUT_SIZE // 16  # dense map resolution (stride 16)
NUM_TYPES: Final = 10

# UINT8 [N, 3, 320, 320], RGB 0..255, channels first: a quarter of the bytes of FP32 on the wire.
# The network casts to float, divides by 255 and applies its ImageNet normalisation itself.
INPUT_NAME: Final = "IMAGE"
INPUT_DATATYPE: Final = "UINT8"  # Triton's name; numpy uint8, onnxruntime tensor(uint8)

# name -> (dtype, shape without batch)
OUTPUTS: Final[dict[str, tuple[str, tuple[int, ...]]]] = {
    "DIST_MAPS": ("FP32", (NUM_TYPES, GRID, GRID)),  # per-cell probability a type is present
    "SEVERITY_MAPS": ("FP32", (NUM_TYPES, GRID, GRID)),  # per-cell severity, 0 slight .. 2 severe
    "PRESENCE": ("FP32", (NUM_TYPES,)),  # image-level probability per type
    "KEY": ("FP32", (NUM_TYPES,)),  # probability the type is a key distortion
    "GRADE_PROBS": ("FP32", (10,)),  # softmax over fine levels a..j (a worst)
    "SCORE": ("FP32", (1,)),  # quality score on the 1-5 MOS scale, higher is better
}
OUTPUT_NAMES: Final[tuple[str, ...]] = tuple(OUTPUTS)
MAX_BATCH: Final = 8
