"""Checkpoints: layouts (ours, the OD API's), restore, NOTE-head checks."""
