"""What the gateway reports about each request: the access log, metrics, request ids.

Each reads the request's :class:`~gateway.state.RequestState`, never loose
attributes, so the log line and the metrics always describe the same request.
"""
