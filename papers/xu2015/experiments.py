"""Xu et al. 2015 rows: soft and hard attention on Flickr8k (Table 1), and the course's GRU.

Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel and Bengio, "Show, Attend and Tell: Neural
Image Caption Generation with Visual Attention", ICML 2015. Table 1's Flickr8k rows were trained
on 6,000 images with VGG conv5_4 features; here 753 of the 6,000 train images exist (113 dev,
125 test), and the default encoder is EfficientNet-Lite0, the one ImageNet CNN available offline
(``--params=encoder=inception_v3`` or ``vgg19`` use Keras's ImageNet weights where they can be
downloaded). The numbers are therefore not the paper's setting; ``results/xu2015.md`` says how.

Hyperparameters (what the paper leaves open follows ``capgen.py`` or is chosen here, and said so):

- ``encoder``, ``encoder_weights``: see ``papers/xu2015/encoders.py``.
- ``decoder``: ``"soft"``, ``"hard"`` or ``"gru"`` (the course's variant).
- ``embedding_dim`` ``m``, ``units`` ``n``, ``attention_units``: 256 / 512 / 512 here (the
  paper tuned them per dataset; far smaller data here).
- ``dropout`` 0.5 (``capgen.py``), ``attention_penalty`` λ of Eq. 14 (1.0, as the authors'
  COCO script), ``reinforce_weight`` λ_r (1: Eq. 12's unbiased estimator), ``entropy_weight``
  λ_e (0.002, ``capgen.py``).
- ``optimizer`` RMSProp for Flickr8k (§5), ``learning_rate``, ``batch_size`` 64 (§5),
  ``epochs``, ``patience`` (early stopping on dev BLEU-4, §5).
- ``min_count``: the vocabulary's word-count cut-off; ``max_caption_length`` tokens per
  training caption, ``<start>``/``<end>`` included; ``max_decode_length``; ``beam_width`` of
  the final evaluation.
"""

from papers import registry
from papers.registry import Reported

_T1 = "Xu et al. 2015, Table 1 (Flickr8k)"
_NOTE = "6,000 train images, VGG conv5_4 features"
_TASK = "papers.xu2015.task:CaptionTask"

BASE_HPARAMS = {
    "encoder": "efficientnet_lite0",
    "encoder_weights": "imagenet",
    "decoder": "soft",
    "embedding_dim": 256,
    "units": 512,
    "attention_units": 512,
    "dropout": 0.5,
    "attention_penalty": 1.0,
    "reinforce_weight": 1.0,
    "entropy_weight": 0.002,
    "min_count": 3,
    "max_caption_length": 32,
    "max_decode_length": 30,
    "beam_width": 5,
    "optimizer": "rmsprop",
    "learning_rate": 1e-3,
    "batch_size": 64,
    "epochs": 30,
    "train_steps": 0,
    "patience": 5,
    "clip_norm": 5.0,
}


def _reported(*values):
    names = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR")
    return tuple(Reported(v, "test", _T1, metric=m, note=_NOTE) for m, v in zip(names, values))


#: (row, hyperparameters, Table 1 numbers, description)
ROWS = (
    ("flickr8k_soft", {"decoder": "soft"}, _reported(67, 44.8, 29.9, 19.5, 18.93),
     "soft attention (§4.2), LSTM decoder, beam search"),
    ("flickr8k_hard", {"decoder": "hard"}, _reported(67, 45.7, 31.4, 21.3, 20.30),
     "hard attention (§4.1, REINFORCE), LSTM decoder, beam search"),
    ("flickr8k_gru", {"decoder": "gru", "attention_penalty": 0.0}, (),
     "the course's lab: GRU decoder with Bahdanau attention, the tutorial's bugs fixed"),
)
_TABLE = ("BLEU-1", "BLEU-2", "BLEU-3", "METEOR", "CIDEr", "frequent_caption/BLEU-4",
          "nearest_image/BLEU-4")

for _row, _params, _reported_rows, _description in ROWS:
    registry.register(registry.Experiment(
        name=f"xu2015/{_row}",
        task=_TASK,
        dataset="flickr8k",
        metric="BLEU-4",
        hparams={**BASE_HPARAMS, **_params},
        reported=_reported_rows,
        description=_description,
        table_metrics=_TABLE,
    ))
