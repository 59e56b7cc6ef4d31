"""The composition root: ``container.Container`` builds every long-lived object of lgo from the
settings; each other module here builds one part (dispensing, documents, hardware, identity,
missions, national clients, Pro Santé Connect, stats) and is called only by the container."""

from lgo.bootstrap.container import Adapters, Container
from lgo.core.lifecycle import ComponentHealth, Lifecycle

__all__ = ["Adapters", "ComponentHealth", "Container", "Lifecycle"]
