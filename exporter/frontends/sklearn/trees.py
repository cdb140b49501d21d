"""Fitted scikit-learn tree models -> one ``TreeEnsemble`` op: the network of a chain.

Each family is read from its fitted attributes into plain node arrays (one ``Tree`` per tree:
children, feature, threshold, where NaN goes, leaf values), with what scikit-learn adds around
the trees: the starting value (GradientBoosting's init estimator, Hist*'s baseline), a forest's
mean, the loss's link (``predict_proba`` for classifiers, ``predict`` for regressors). Leaf
values are the numbers scikit-learn adds (GradientBoosting's already times the learning rate,
as ``predict_stages`` computes ``scale * value``), so the C adds the same doubles in the same order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exporter.common.errors import ExportError
from exporter.frontends.builder import Unsupported
from exporter.frontends.loaded import LoadedModel
from exporter.frontends.registry import Registry
from exporter.frontends.sklearn.safe_load import load_transformer_file
from exporter.frontends.trees.ensemble import Ensemble, Tree, checked, ensemble_graph
from exporter.ir import Graph


@dataclass(frozen=True)
class TreeFamily:
    """How a family's fitted trees are read: its reader, and the attribute that holds them once fitted."""

    read: Callable[[Any], Ensemble]
    fitted: str


FAMILIES: Registry[str, TreeFamily] = Registry("tree model")


def handles(*class_names: str, fitted: str) -> Callable[[Callable[[Any], Ensemble]], Callable[[Any], Ensemble]]:
    """Declare the decorated reader as the one of scikit-learn's ``class_names``, fitted once ``fitted`` is set."""

    def declare(read: Callable[[Any], Ensemble]) -> Callable[[Any], Ensemble]:
        for name in class_names:
            FAMILIES.add(name, TreeFamily(read, fitted))
        return read

    return declare


def _sklearn_tree(tree: Any, values: np.ndarray) -> Tree:
    """A ``sklearn.tree._tree.Tree``; ``values`` per node, as the caller reads them from ``tree.value``."""
    left = np.asarray(tree.children_left)
    missing = getattr(tree, "missing_go_to_left", np.zeros(left.size, dtype=np.uint8))
    return Tree(
        left,
        np.asarray(tree.children_right),
        np.asarray(tree.feature),
        np.asarray(tree.threshold, dtype=np.float64),
        np.asarray(missing, dtype=np.uint8),
        left == -1,
        np.asarray(values, dtype=np.float64).reshape(left.size, -1),
        int(tree.max_depth),
    )


def _hist_tree(predictor: Any) -> Tree:
    nodes = predictor.nodes
    if np.any(nodes["is_categorical"]):
        raise Unsupported("categorical splits are not supported")
    return Tree(
        nodes["left"].astype(np.int64),
        nodes["right"].astype(np.int64),
        nodes["feature_idx"],
        nodes["num_threshold"].astype(np.float64),
        nodes["missing_go_to_left"].astype(np.uint8),
        nodes["is_leaf"].astype(bool),
        nodes["value"].astype(np.float64).reshape(-1, 1),
        int(nodes["depth"].max(initial=0)),
    )


def _single_output(est: Any) -> None:
    if getattr(est, "n_outputs_", 1) != 1:
        raise Unsupported(f"{est.n_outputs_} outputs: only single-output models are supported")


def _class_values(est: Any, tree: Any) -> np.ndarray:
    """A classification tree's per-node class probabilities, as its ``predict_proba`` returns them."""
    return np.asarray(tree.value, dtype=np.float64)[:, 0, : int(est.n_classes_)]


@handles("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor", fitted="tree_")
def _decision_tree(est: Any) -> Ensemble:
    _single_output(est)
    if hasattr(est, "classes_"):
        n = int(est.n_classes_)
        return Ensemble([_sklearn_tree(est.tree_, _class_values(est, est.tree_))], [0], np.zeros(n))
    return Ensemble([_sklearn_tree(est.tree_, np.asarray(est.tree_.value)[:, 0, :1])], [0], np.zeros(1))


@handles(
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
    fitted="estimators_",
)  # fmt: skip
def _forest(est: Any) -> Ensemble:
    _single_output(est)
    if hasattr(est, "classes_"):
        trees = [_sklearn_tree(e.tree_, _class_values(est, e.tree_)) for e in est.estimators_]
        width = int(est.n_classes_)
    else:
        trees = [_sklearn_tree(e.tree_, np.asarray(e.tree_.value)[:, 0, :1]) for e in est.estimators_]
        width = 1
    return Ensemble(trees, [0] * len(trees), np.zeros(width), divisor=float(len(trees)))


_LOGISTIC = {"HalfBinomialLoss": 1.0, "ExponentialLoss": 2.0}  # predict_proba: expit(scale * raw)


def _classifier_link(est: Any, ensemble: Ensemble) -> Ensemble:
    """The classifier's ``predict_proba`` from its raw sums: expit (two columns) or softmax."""
    loss = type(est._loss).__name__
    if loss in _LOGISTIC:
        ensemble.link, ensemble.raw_scale = "logistic", _LOGISTIC[loss]
    elif loss == "HalfMultinomialLoss":
        ensemble.link = "softmax"
    else:
        raise Unsupported(f"loss {loss} has no predict_proba the exporter knows")
    return ensemble


@handles("GradientBoostingClassifier", "GradientBoostingRegressor", fitted="estimators_")
def _gradient_boosting(est: Any) -> Ensemble:
    init = est.init_
    if not isinstance(init, str) and type(init).__name__ not in ("DummyClassifier", "DummyRegressor"):
        raise Unsupported(f"init estimator {type(init).__name__}: only the default (a prior) or 'zero' is supported")
    baseline = est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0]
    rate = float(est.learning_rate)
    trees, offsets = [], []
    for stage in est.estimators_:
        for k, tree in enumerate(stage):
            trees.append(_sklearn_tree(tree.tree_, rate * np.asarray(tree.tree_.value)[:, 0, :1]))
            offsets.append(k)
    ensemble = Ensemble(trees, offsets, baseline)
    return _classifier_link(est, ensemble) if hasattr(est, "classes_") else ensemble


_REGRESSION_LINKS = {"IdentityLink": "identity", "LogLink": "exp"}


@handles("HistGradientBoostingClassifier", "HistGradientBoostingRegressor", fitted="_predictors")
def _hist_gradient_boosting(est: Any) -> Ensemble:
    categorical = [getattr(est, "is_categorical_", None), getattr(est._bin_mapper, "is_categorical_", None)]
    if getattr(est, "_preprocessor", None) is not None or any(c is not None and np.any(c) for c in categorical):
        raise Unsupported("categorical features are not supported")
    trees, offsets = [], []
    for iteration in est._predictors:
        for k, predictor in enumerate(iteration):
            trees.append(_hist_tree(predictor))
            offsets.append(k)
    ensemble = Ensemble(trees, offsets, np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1))
    if hasattr(est, "classes_"):
        return _classifier_link(est, ensemble)
    link = type(est._loss.link).__name__
    if link not in _REGRESSION_LINKS:
        raise Unsupported(f"link {link} of loss {type(est._loss).__name__} is not supported")
    ensemble.link = _REGRESSION_LINKS[link]
    return ensemble


def is_tree_model(obj: Any) -> bool:
    """A scikit-learn estimator of one of the supported tree families."""
    return type(obj).__name__ in FAMILIES and type(obj).__module__.startswith("sklearn.")


def _checked(est: Any, read: Callable[[Any], Ensemble], n_features: int, fitted: str) -> Ensemble:
    """The family's reading, every tree's arrays checked (``tree_checks``) before anything walks them
    (scikit-learn's own predict included); each tree's depth is measured, not taken from the file."""
    try:
        ensemble = read(est)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as err:
        raise Unsupported(f"its fitted trees are not what scikit-learn stores ({type(err).__name__}: {err})") from None
    return checked(ensemble, n_features, fitted, sklearn_leaves=not type(est).__name__.startswith("Hist"))


def _accepts_nan(est: Any, n_features: int) -> bool:
    """Whether the fitted model predicts rows with missing values (the C then routes them as it does)."""
    try:
        est.predict(np.full((1, n_features), np.nan, dtype=np.float32))
    except ValueError:
        return False
    return True


def tree_graph(est: Any, source: str) -> Graph:
    """The network of a fitted tree model: one ``TreeEnsemble`` from its input row to its outputs; a model
    refused is reported as any frontend reports a refused layer (``Builder.refuse``)."""
    cls = type(est).__name__
    family = FAMILIES[cls]
    n_features = getattr(est, "n_features_in_", None)

    def read() -> Ensemble:
        if not hasattr(est, family.fitted):
            raise Unsupported(f"not fitted (no {family.fitted})")
        if not isinstance(n_features, (int, np.integer)) or n_features < 1:
            raise Unsupported(f"n_features_in_ is {n_features!r}, not a number of inputs")
        ensemble = _checked(est, family.read, int(n_features), family.fitted)
        ensemble.missing = _accepts_nan(est, int(n_features))  # scikit-learn's predict walks checked trees only
        return ensemble

    return ensemble_graph(source, cls, read)


def _reference(est: Any, dtype: type = np.float32) -> Callable[[np.ndarray], np.ndarray]:
    """``predict_proba`` of a classifier, ``predict`` of a regressor, as float32 rows (``dtype``: float64 is
    what scikit-learn computes, after comparing the inputs in float32 as the C does: its float64 reference)."""
    if hasattr(est, "classes_"):
        return lambda x: np.asarray(est.predict_proba(x), dtype=dtype)
    return lambda x: np.asarray(est.predict(x), dtype=dtype).reshape(len(x), -1)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> Any:
    return load_transformer_file(path)


def load_model_file(path: str | os.PathLike[str]) -> Any:
    """The estimator in a pickle/joblib/skops file, safely loaded (once per file version)."""
    if not Path(path).is_file():
        raise ExportError(f"{path}: no such model file")
    stat = Path(path).stat()
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)


def holds_tree_model(path: str | os.PathLike[str]) -> bool:
    """Whether a scikit-learn file holds a tree model (a network), not a transformer; unreadable: no."""
    try:
        return is_tree_model(load_model_file(path))
    except (ExportError, OSError):
        return False


def load_trees(model: Any) -> LoadedModel:
    """A tree model (a fitted estimator, or its .pkl/.joblib/.skops file) as a network with its reference."""
    import sklearn

    if isinstance(model, (str, os.PathLike)):
        source, est = Path(model).name, load_model_file(model)
        if not is_tree_model(est):
            families = ", ".join(sorted({n.removesuffix("Classifier").removesuffix("Regressor") for n in FAMILIES}))
            raise ExportError(
                f"{model}: holds a {type(est).__name__}, not a tree model ({families}); "
                "give a transformer as preprocessing or a target transform"
            )
    else:
        source, est = f"{type(model).__name__} (in memory)", model
    graph, reference = tree_graph(est, source), _reference(est)
    return LoadedModel(graph, reference, "scikit-learn", sklearn.__version__, reference64=_reference(est, np.float64))
