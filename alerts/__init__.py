"""alerts package (built by a later issue)."""
