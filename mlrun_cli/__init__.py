"""mlrun: a fast, dependable command-line runner for MLflow MLproject files."""

__version__ = "0.1.0"
