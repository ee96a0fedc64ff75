"""The request language, pure: what a request may say, in Keras's words, and nothing about how it is served.

:mod:`.model` (``ModelSpec``), :mod:`.training` (``TrainingSpec``), :mod:`.types` (the shared field types),
:mod:`.layers` (one module per layer type), :mod:`.messages` (pydantic's errors in the service's words),
:mod:`.keras_import` (Keras's ``to_json()`` in), :mod:`.python_export` (Keras 3 code out), :mod:`.examples`
(the seed's models). No FastAPI, Keras, numpy or storage here (an import-linter contract checks it).
"""
