"""Benchmarks: speed, size, memory and start-up of every exported file against its Keras model."""
