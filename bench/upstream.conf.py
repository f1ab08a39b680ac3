"""gunicorn settings for the benchmark's upstream (not the gateway's gunicorn.conf.py).

gthread, because sync workers close every connection and the benchmark is
about a gateway that reuses its upstream connections.
"""
workers = 2
worker_class = "gthread"
threads = 16
keepalive = 60
accesslog = None
control_socket_disable = True
