"""Pillow plugin: ``import openjai.pillow`` and Pillow opens and saves .jai files.

    >>> import openjai.pillow
    >>> from PIL import Image
    >>> im = Image.open("photo.jai")     # header only: size and mode known, pixels not decoded yet
    >>> im.load()                        # decodes (openjai.decode)
    >>> im.save("out.jai", bpp=0.5)      # or quality=0..100; also model=, effort=

Recognised by its magic bytes (``OJAI``), not by the suffix, so a renamed file opens too.
Modes: grey → ``L``, grey with alpha → ``LA``, colour → ``RGB``, with alpha → ``RGBA`` (an
RGB image whose channels are all equal comes back as ``RGB``, as ``openjai.decode`` gives it).
Saving converts other modes as ``openjai.encode`` does for a PIL image (``P`` to ``RGB``/``RGBA``,
16-bit grey keeps its 8 high bits). A file that starts with the magic bytes but has a broken
header raises ``SyntaxError`` on open (Pillow's convention), one that fails later ``OSError`` on
load, each with the openjai error's message.
"""

from __future__ import annotations

from typing import IO

import numpy as np
from PIL import Image, ImageFile

from .codec.container import MAGIC, ColourMode, read_header
from .errors import BitstreamError

FORMAT = "JAI"
MIME = "image/x-jai"
# fixed header + longest model id + image fields: enough to read size and mode
_HEADER_BYTES = 6 + 64 + 14
_MODES = {
    ColourMode.RGB: "RGB",
    ColourMode.GREY: "L",
    ColourMode.RGBA: "RGBA",
    ColourMode.GREY_ALPHA: "LA",
    ColourMode.RGB_GREY: "RGB",
    ColourMode.RGBA_GREY: "RGBA",
}


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == MAGIC


class JaiDecoder(ImageFile.PyDecoder):
    """Reads the whole stream from the file and decodes it with :func:`openjai.decode`."""

    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        from . import api

        assert self.fd is not None
        data = self.fd.read()
        try:
            arr = api.decode(data)
        except BitstreamError as e:
            raise OSError(f"cannot decode .jai: {e}") from None
        self.set_as_raw(np.ascontiguousarray(arr).tobytes())
        return -1, 0


class JaiImageFile(ImageFile.ImageFile):
    """A .jai image: ``open`` reads the header, ``load`` decodes."""

    format = FORMAT
    format_description = "openjai learned image codec"

    def _open(self) -> None:
        assert self.fp is not None
        head = self.fp.read(_HEADER_BYTES)
        try:
            header, _ = read_header(head)
        except BitstreamError as e:
            raise SyntaxError(str(e)) from None
        self._mode = _MODES[header.colour]
        self._size = (header.width, header.height)
        self.info["model"] = header.model_id
        self.info["rate"] = header.rate
        self.tile = [ImageFile._Tile("jai", (0, 0) + self.size, 0, None)]


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from . import api

    opts = im.encoderinfo
    data = api.encode(im, bpp=opts.get("bpp"), quality=opts.get("quality"),
                      model=opts.get("model", "base"), effort=int(opts.get("effort", 0)))
    fp.write(data)


Image.register_decoder("jai", JaiDecoder)
Image.register_open(FORMAT, JaiImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".jai")
Image.register_mime(FORMAT, MIME)

__all__ = ["FORMAT", "MIME", "JaiImageFile", "JaiDecoder"]
