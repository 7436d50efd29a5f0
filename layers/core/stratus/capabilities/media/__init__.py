"""Media generation (seed 002): text/image to image and video on the job pipeline."""
