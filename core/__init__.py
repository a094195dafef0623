"""sentilite: small sentiment and text-classification models for edge apps.

The package mirrors the repository's folders: ``sentilite.train`` (data,
vocabulary, Keras models, fitting; needs TensorFlow), ``sentilite.export``
(one module per target format, each validated), ``sentilite.runtime``
(tokenizer, padding, backends; numpy plus one inference engine) and
``sentilite.bench``. ``sentilite.shared`` holds what every part uses.
"""
__version__ = "0.3.0"
LABELS = ("negative", "positive")  # the labels of the IMDB sentiment models; a model's own are model.labels
