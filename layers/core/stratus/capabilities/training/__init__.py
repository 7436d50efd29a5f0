"""Training (seeds 001, 002): tabular models trained by a container job, registered on completion."""
