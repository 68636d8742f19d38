"""Training data: the procedural landscapes and the official dataset layouts."""
