"""The JSON Schemas shipped with mlrun; a package so importlib.resources finds them anywhere."""
