"""Writing datasets: TFRecord shards, Beam IO, sorted runs, splits."""
