"""Model code the API runs itself. Standard library only: the API Lambda never imports torch or numpy."""
