"""The error every unusable pipeline config raises (its own module, so that
every config module can raise it without importing another)."""


class ConfigError(ValueError):
  """A pipeline config that cannot be used; the message names file and field."""
