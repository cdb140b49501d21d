"""Sets: several models in one library (TOML manifests) and composed pipelines of generators."""
