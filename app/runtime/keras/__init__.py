"""The only modules that import Keras (and so TensorFlow): :mod:`.build`, :mod:`.train`, :mod:`.data`, :mod:`.predict`,
:mod:`.script` (and :mod:`.baseline`, numpy only, beside the data it scores).

They run in worker processes only; the server process never imports them. Importing this package chooses the
backend first, before any submodule imports Keras.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not our log
