"""openjai: a learned image codec with an exact, device-independent entropy path.

Public API (see openjai.api): encode, decode, decode_latents, read_info, load_model.
Importing openjai raises glibc's malloc thresholds so that freed arrays are reused instead of
page-faulted in again (openjai/allocator.py: ~20 % of the decode time).
"""

from .allocator import keep_freed_memory
from .api import DecodedLatents, Limits, StreamInfo, decode, decode_latents, encode, load_model, read_info
from .errors import OpenJAIError

keep_freed_memory()

__all__ = ["encode", "decode", "decode_latents", "read_info", "load_model", "StreamInfo", "DecodedLatents",
           "Limits", "OpenJAIError"]
__version__ = "0.1.0"
