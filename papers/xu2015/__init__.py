"""Show, Attend and Tell (Xu et al. 2015): frozen CNN encoders for the annotation vectors."""
