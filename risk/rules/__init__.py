"""Versioned rule sets (``sets/*.json``) and the pure engine that evaluates them."""
