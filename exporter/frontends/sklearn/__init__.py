"""scikit-learn frontend: fitted transformers (preprocessing, target transforms) -> IR column stages."""

from exporter.frontends.sklearn.safe_load import load_transformer_file
from exporter.frontends.sklearn.transformers import transformer_stage

__all__ = ["load_transformer_file", "transformer_stage"]
