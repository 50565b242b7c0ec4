"""Evaluation metrics shared by the papers (not themselves a paper).

- :mod:`metrics.captions`: BLEU-1..4, METEOR, CIDEr and ROUGE-L exactly as coco-caption
  computes them (the captioning papers' protocol), with the PTB tokenizer
  (:mod:`metrics.ptb_tokenizer`), METEOR 1.5 over a kept-open process (:mod:`metrics.meteor`)
  and the Java runtime both need (:mod:`metrics.java_runtime`).
"""
