"""The one definition of bits per pixel used by every number openjai reports."""


def bits_per_pixel(num_bytes: int, width: int, height: int) -> float:
    """8 × bytes / (width × height): the whole file for .jai and JPEG, see each anchor for its bytes."""
    return 8.0 * num_bytes / (width * height)
