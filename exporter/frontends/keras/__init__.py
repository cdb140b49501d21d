"""Keras frontend: ``.keras`` (Keras 3) and legacy ``.h5`` files, Keras 2 SavedModel folders, or a live
``keras.Model``; ``load.load_keras`` is its entry point.

What the exporter knows of each Keras layer is one declaration in ``layers.py`` (its mapping and its
stored variables), of each Keras operation one in ``operations.py`` (its mapping and the TensorFlow
functions a Keras 2 file calls it by). ``screen`` reads and screens a file's configuration without
Keras, ``stored`` walks a ``.keras`` file without Keras, ``walk`` walks a loaded model, ``keras2``
translates what Keras 3 cannot load.
"""
