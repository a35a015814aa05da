"""maps package (built by a later issue)."""
