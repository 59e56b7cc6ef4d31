"""The localhost HTTP API for counter front-ends."""

from lgo.api.app import create_app

__all__ = ["create_app"]
