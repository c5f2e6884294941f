"""Writing datasets: TFRecord shards through Beam, sorted runs, dataset splits and their manifest."""
