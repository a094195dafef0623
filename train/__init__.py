"""Training: IMDB data, vocabulary building, Keras models and fitting (needs TensorFlow)."""
import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) drowns the progress output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
