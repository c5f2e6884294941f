"""Pipeline configs: read, override, validate, preflight before a job."""
