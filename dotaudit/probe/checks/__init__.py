"""One module per check; ``probe/registry.py`` lists them in run order."""
