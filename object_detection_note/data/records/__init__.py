"""TF Example records: the codec, reading TFRecord files, label maps, and locating and skipping bad records."""
