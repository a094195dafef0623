"""Export trained models to TFLite and ONNX, each file validated against its Keras source."""
