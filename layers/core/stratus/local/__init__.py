"""The local runtime: `stratus serve` runs the whole platform on one machine."""
