"""The course's first lab: bag-of-words softmax regression on SST (no paper; course baselines)."""
