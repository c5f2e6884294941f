"""TF Example records: codec, TFRecord reading, label maps, bad records."""
