"""sed_uda: cross-lingual speech emotion recognition with unsupervised domain adaptation."""

__version__ = "0.1.0"
