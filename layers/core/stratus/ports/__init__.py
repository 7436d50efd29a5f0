"""Ports: the small interfaces behind which every external system sits.

Each has an AWS adapter and a local adapter under `stratus.adapters`; `stratus.composition` picks one.
"""
