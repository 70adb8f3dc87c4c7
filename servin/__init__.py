"""Servin: a container engine that speaks the Docker Engine API v1.41."""

__version__ = "0.1.0"
