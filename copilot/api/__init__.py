"""The HTTP + WebSocket service over the engine: ``create_app(settings)`` builds it, ``copilot serve`` runs it."""

from copilot.api.app import create_app

__all__ = ["create_app"]
