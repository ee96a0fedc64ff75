"""The process boundary: worker pools and the channel they report on (:mod:`.pool`), the functions that run in
the workers (:mod:`.tasks`), and the Keras work itself (:mod:`.keras`, the only modules that import Keras)."""
