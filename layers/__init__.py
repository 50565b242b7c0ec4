"""Shared Keras layers of the suite, and the recurrence and decoding helpers they run on."""

from layers.bert_heads import ClassificationHead, MaskedMeanPooling
from layers.gru import ChoGRU
from layers.maxout import Maxout
from layers.recurrence import masked_recurrence, time_major_loop

__all__ = ["ChoGRU", "ClassificationHead", "MaskedMeanPooling", "Maxout", "masked_recurrence",
           "time_major_loop"]
