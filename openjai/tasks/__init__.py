"""Machine tasks on the entropy-decoded latents (no synthesis transform).

    openjai.tasks.classify(data)  -> [(class index, name, probability)] × 5   (classify.py)
    openjai.tasks.segment(data)   -> uint8 (H, W) mask                        (segment.py)
    openjai.tasks.superres(data), openjai.tasks.denoise(data) -> uint8 RGB

Each function takes the bytes of a .jai stream of a model the task has weights for
(registry.py). The task modules are imported on first use, so one missing or broken task
never breaks the others.

Each function lives in a module of the same name, and Python's import system sets a
package's attribute to a submodule once it is imported; this package keeps the *function*
under that name instead (``_Tasks.__setattr__``), so ``openjai.tasks.classify`` is always
callable. Reach a module's other names with ``from openjai.tasks.classify import ...``.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

TASKS = ("classify", "segment", "superres", "denoise")
#: the project's photo folders (train/, val/, sr_test/, imagenet_labeled/; README inside), from
#: which the task networks train and are evaluated; never shipped
SHARED_DATA = Path("/work/shared/data")


class _Tasks(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in TASKS and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Tasks


def __getattr__(name: str) -> Any:
    if name in TASKS:
        importlib.import_module(f"{__name__}.{name}")  # the import stores the function (see above)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*TASKS, "SHARED_DATA"]
