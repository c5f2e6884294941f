"""Pipeline configs: reading, overriding, validating, and the checks run before a job starts."""
