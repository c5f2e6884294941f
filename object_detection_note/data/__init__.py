"""Datasets: records/ (format of a record), writing/ (shards), input/ (what training reads), formats/ (converters)."""
