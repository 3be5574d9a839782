"""ITU-R BT.709 colour constants, shared by the metrics (eval/metrics/colour.py) and the
codec's luma-weighted distortion (codec/distortion.py)."""

#: luma weights (Kr, Kg, Kb) and the Cb / Cr divisors 2(1-Kb), 2(1-Kr)
BT709_KR: float = 0.2126
BT709_KG: float = 0.7152
BT709_KB: float = 0.0722
BT709_CB_DIV: float = 1.8556
BT709_CR_DIV: float = 1.5748
