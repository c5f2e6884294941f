"""The input pipeline the trainer and evaluator read: decoding, augmentation, seed/mined mixing, finding a bad record."""
