"""The runtime's TFLite files (sentilite.export.tflite); nothing here imports TensorFlow until it is used.

    graph       the forward pass as a tf.function: the cell in a WHILE loop over the state
    cells       the Keras cells' step in TensorFlow operators (this graph's and MediaPipe's)
    ngrams      the n-gram logit in TensorFlow operators, float or on integers
    convert     the converter at each precision, full-integer in a child process; the written file
    loop_state  the int8 loop-state rewrite of the full-integer file
    schema      the flatbuffer object API: enum names, operator codes, metadata buffers
    describe    operators and float tensors of a file, for the manifest
"""
