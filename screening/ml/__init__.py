"""Pure media and model code. Nothing in this package imports Django (a test enforces it)."""
