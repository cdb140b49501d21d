"""The scikit-learn classes a tree model file may hold, for the safe loader to rebuild and nothing else.

Apart from ``trees.py`` (which reads the loaded models) because the safe loader needs the list before
any tree is loaded, and the tree frontend loads its files through the safe loader.
"""

_LOSSES = (
    "HalfBinomialLoss",
    "HalfMultinomialLoss",
    "ExponentialLoss",
    "HalfSquaredError",
    "AbsoluteError",
    "HuberLoss",
    "PinballLoss",
    "HalfPoissonLoss",
    "HalfGammaLoss",
)
LOADABLE = {
    "sklearn.tree._classes": {
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
    },
    "sklearn.ensemble._forest": {
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    },
    "sklearn.ensemble._gb": {"GradientBoostingClassifier", "GradientBoostingRegressor"},
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting": {
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    },
    "sklearn.ensemble._hist_gradient_boosting.binning": {"_BinMapper"},
    "sklearn.dummy": {"DummyClassifier", "DummyRegressor"},  # GradientBoosting's default init estimator
    "sklearn.preprocessing._label": {"LabelEncoder"},  # a classifier's labels
    "sklearn.tree._tree": {"Tree"},
    "sklearn.ensemble._hist_gradient_boosting.predictor": {"TreePredictor"},
    "sklearn._loss.loss": set(_LOSSES),
    "sklearn._loss._loss": {f"{prefix}{name}" for prefix in ("Cy", "__pyx_unpickle_Cy") for name in _LOSSES},
    "sklearn._loss.link": {"IdentityLink", "LogLink", "LogitLink", "HalfLogitLink", "MultinomialLogit", "Interval"},
    "numpy.random.bit_generator": {"SeedSequence", "__pyx_unpickle_SeedSequence"},
}
