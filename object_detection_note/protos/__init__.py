"""Generated protocol buffer modules (built from ../../protos/*.proto; not committed)."""
