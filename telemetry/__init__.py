"""telemetry package (built by a later issue)."""
