"""layerwise: Keras Sequential model summaries and short trainings over HTTP."""

__version__ = "0.1.0"
