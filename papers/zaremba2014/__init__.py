"""Zaremba, Sutskever and Vinyals (2014), "Recurrent Neural Network Regularization": the LSTM
language model with dropout on the non-recurrent connections, trained by truncated
backpropagation through time that carries the state across batches, on IMDB reviews."""
