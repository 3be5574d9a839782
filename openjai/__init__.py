"""openjai: a learned image codec with an exact, device-independent entropy path.

Public API (see openjai.api): encode, decode, decode_latents, read_info, load_model.
"""

from .api import DecodedLatents, Limits, StreamInfo, decode, decode_latents, encode, load_model, read_info
from .errors import OpenJAIError

__all__ = ["encode", "decode", "decode_latents", "read_info", "load_model", "StreamInfo", "DecodedLatents",
           "Limits", "OpenJAIError"]
__version__ = "0.1.0"
