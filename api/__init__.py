"""The HTTP API (issue 15): ``cli.py serve`` -> :func:`api.app.create_app`; REST under ``/v1``, the Label Studio
ML backend under ``/ls``. A peer of ``ui/``: it reaches data and models only through ``services``."""
