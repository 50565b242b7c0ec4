"""Shared Keras layers of the suite."""

from layers.gru import ChoGRU, time_major_loop
from layers.maxout import Maxout
from layers.bert_heads import ClassificationHead, MaskedMeanPooling

__all__ = ["ChoGRU", "ClassificationHead", "MaskedMeanPooling", "Maxout", "time_major_loop"]
