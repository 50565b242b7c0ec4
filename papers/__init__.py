"""One package per paper, each of one shape: ``model.py`` (the paper's models), ``task.py`` (its
:class:`training.task.Task`), ``experiments.py`` (hyperparameters, the table rows registered
with :mod:`papers.registry`, and the numbers the paper reports), and modules for what only that
paper needs (encoders, pictures, a learning curve). A paper whose models are not trained
(``pennington2014``: pretrained word vectors, measured) has no task and no registered rows: its
measurements and the numbers it reports are modules of their own.

- ``baselines``: the course's first labs (bag-of-words logistic regression on SST) and the SST
  word-level classifiers of the course's ladder.
- ``cho2014``: Cho et al. 2014, the GRU and the RNN Encoder-Decoder, plus the SST ladder.
- ``devlin2019``: Devlin et al. 2019, BERT fine-tuning on GLUE SST-2, MRPC, SNLI and IMDB.
- ``pennington2014``: Pennington et al. 2014, GloVe and word2vec vectors: neighbours,
  analogies, word-similarity benchmarks, pictures.
- ``rocktaschel2016``: Rocktäschel et al. 2016, entailment with neural attention on SNLI, and a
  synthetic alignment task (``alignment.py``).
- ``xu2015``: Xu et al. 2015, Show, Attend and Tell on Flickr8k.
- ``zaremba2014``: Zaremba et al. 2014, the LSTM language model with truncated
  backpropagation through time, on IMDB reviews.
"""
