"""Rocktäschel et al. 2016, Reasoning about Entailment with Neural Attention (SNLI)."""
