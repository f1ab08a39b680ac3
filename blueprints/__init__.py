"""Hand-written blueprints: endpoints that are more than a proxy.

List them in the config as ``blueprints: ["blueprints.module:bp"]``. A view
reaches a service through ``current_app.extensions["gateway"].upstreams[name]``
(its ``call()`` uses the service's pools, timeouts and error translation).
"""
