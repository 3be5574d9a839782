"""openjai: a learned image codec with an exact, device-independent entropy path."""
