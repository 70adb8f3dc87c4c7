"""Registry client (HTTP API v2): pull, push, login, search, distribution inspect."""

from servin.registry.service import RegistryService

__all__ = ["RegistryService"]
