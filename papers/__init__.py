"""One package per paper: models, experiments (table rows) and the paper's reported numbers.

- ``baselines``: the course's first labs (bag-of-words logistic regression on SST).
- ``cho2014``: Cho et al. 2014, the GRU and the RNN Encoder-Decoder, plus the SST ladder.
- ``devlin2019``: Devlin et al. 2019, BERT fine-tuning on GLUE SST-2, MRPC, SNLI and IMDB.
"""
