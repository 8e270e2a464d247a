"""An example clinic plugin for homework (see plugin.py)."""
