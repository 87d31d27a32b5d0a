"""The use cases of the registry, written against the ports in `ports`; raises domain errors."""

from artreg.registry.service import Policy, Registry

__all__ = ["Policy", "Registry"]
