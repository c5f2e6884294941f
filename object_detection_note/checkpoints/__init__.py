"""Checkpoints: their layouts (this project's, the OD API's), resume and fine-tune restore, NOTE-head checks."""
