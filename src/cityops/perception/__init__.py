"""City perception: devices and their profiles, ThingsBoard-compatible ingestion, telemetry storage."""
