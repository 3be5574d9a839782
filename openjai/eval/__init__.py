"""Evaluation under the JPEG AI common training and test conditions (CTTC)."""
