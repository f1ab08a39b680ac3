"""Hand-written blueprints: endpoints that are more than a proxy.

List them in the config as ``blueprints: ["blueprints.module:bp"]``. A view
reaches a service through ``gateway.api.service(name).call(...)`` (the
service's pools, timeouts, breaker and error translation) and runs calls
together with ``gateway.api.gather``.
"""
