"""The memory an image size needs, and the check that refuses what the machine cannot hold.

Encoding and decoding keep a few whole-image arrays (uint8 RGB images, the latents, the
residual and lattice layers' integers in int16) and work on everything float in tiles
(tiling.py) and row strips (strips.py), so their peak resident set grows linearly with the
pixel count: a fixed part (interpreter, torch, the model, one synthesis tile, one strip)
plus bytes per pixel. Measured with `benchmarks/bench_large.py --threads 1` (every layer on,
0.4 to 64 MP; benchmarks/README.md) and rounded up:

    operation                     fixed      per pixel    8K (33 MP), measured
    decode                        700 MiB    16 bytes     1.2 GiB   1069 MiB
    encode (bpp target, quality)  1000 MiB   24 bytes     1.7 GiB   1553 MiB

A size whose estimate exceeds the memory the machine has available is refused before
anything of its size is allocated (LimitError), instead of failing half-way or swapping.
"""

from __future__ import annotations

from ..errors import LimitError

MIB = 1 << 20
#: operation → (fixed bytes, bytes per pixel)
NEEDS = {"decode": (700 * MIB, 16), "encode": (1000 * MIB, 24)}


def bytes_needed(width: int, height: int, operation: str) -> int:
    """Estimated peak resident set (bytes) of ``operation`` ("encode" or "decode") on an image
    of ``width`` × ``height``."""
    fixed, per_pixel = NEEDS[operation]
    return fixed + per_pixel * width * height


def available_bytes() -> int | None:
    """Memory this process can still get: the kernel's MemAvailable, lowered to the room left
    under a cgroup limit (containers); None where neither can be read (not Linux)."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            room = int(limit) - used
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def resident_bytes() -> int:
    """This process's resident set now (0 where /proc does not tell)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return 0


def check_memory(width: int, height: int, operation: str) -> None:
    """Raise LimitError when ``operation`` on this size needs more memory than this process
    holds and can still get."""
    available = available_bytes()
    needed = bytes_needed(width, height, operation)
    if available is not None and needed - resident_bytes() > available:
        raise LimitError(
            f"{operation} of a {width}x{height} image needs about {needed / (1 << 30):.1f} GiB of memory; "
            f"{available / (1 << 30):.1f} GiB is available: free memory, or use a machine with more"
        )
