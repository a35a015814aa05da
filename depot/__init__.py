"""depot package (built by a later issue)."""
