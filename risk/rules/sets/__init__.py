"""Rule set files, one per version (``v1.json``, ...), shipped as package data."""
