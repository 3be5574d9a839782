"""×4 super-resolution from the entropy-decoded latents of a coded low-resolution image (no codec g_s).

    LR photo ─encode─▶ .jai ─decode_latents─▶ ŷ ─g_s-shaped synthesis─▶ LR-like RGB
             ─ResidualHead: bicubic ×4 + learned residual (pixel shuffle ×4)─▶ HR RGB (4H, 4W)

Both parts (image_net.py) are the task's weights: the synthesis starts as a copy of ``base``'s
g_s, and the whole network is fine-tuned on (ŷ of the coded LR → HR) (train_image.py). The
pixel-domain anchor is the same head trained on decoded LR images (weights/superres_pixel.*).
"""

from __future__ import annotations

import numpy as np

from .image_net import run_task

TASK = "superres"
FACTOR = 4


def superres(data: bytes) -> np.ndarray:
    """The ×4 image (uint8 RGB, 4H × 4W) from the latents of a coded H × W image."""
    return run_task(TASK, data, FACTOR)
