"""The user's own preprocessing module, as Lamarr's training code has it: a decorrelation step and
the ProbNN functions.

Pickles of the tracking covariance's target transform name ``lamarr_utils.DecorrTransformer``,
so they load only with ``trust = ["lamarr_utils"]`` (``--trust lamarr_utils``); the exporter
reads the fitted ``eig`` matrix and never runs this code (parity does, as the reference). A
PID target transform's ``FunctionTransformer(func=logit, inverse_func=sigmoid)`` is exported
from the C expressions attached as ``inC`` (scikinC's convention).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class DecorrTransformer(TransformerMixin, BaseEstimator):
    """Rotate onto the eigenvectors of the training covariance: ``X.dot(eig)``, back with ``eig.T``."""

    def fit(self, X, y=None):
        _, self.eig = np.linalg.eig(np.cov(np.asarray(X, dtype=np.float64).T))
        return self

    def transform(self, X):
        return np.asarray(X).dot(self.eig)

    def inverse_transform(self, X):
        return np.asarray(X).dot(self.eig.T)


def logit(x):
    """ProbNN outputs to the real line (a target transform's func), with its C expression (scikinC's inC)."""
    return np.log(x / (1 - x))


def sigmoid(x):
    """Back to probabilities (the target transform's inverse_func), with its C expression."""
    return 1 / (1 + np.exp(-x))


logit.inC = "log({x} / (1 - {x}))"
sigmoid.inC = "1 / (1 + exp(-{x}))"
