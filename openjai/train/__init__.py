"""Training: data sampling, resumable R-D loop, atomic checkpoints."""
