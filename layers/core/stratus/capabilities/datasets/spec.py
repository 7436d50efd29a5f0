"""What the rest of the system needs to know about datasets: the queue message that parses a large upload."""

PROCESS_MESSAGE = "dataset.process"
