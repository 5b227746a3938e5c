"""Code that runs in the entry point's interpreter: its folder goes on PYTHONPATH, so
`import mlrun_log` works there without mlrun installed."""
