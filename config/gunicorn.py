"""gunicorn's settings, the same wherever the web process starts
(``manage.py up``, Compose, the image, the benches)::

    gunicorn -c python:config.gunicorn config.wsgi:application

Options given on the command line (``--bind``, ``--workers``) win.

Workers are processes, one per core (at least two): Python runs one request
at a time per process, and more processes than cores only trade CPU between
them (on the 2-core bench machine, 4 workers had worse tails than 2). Each
worker's threads overlap the requests waiting on the database and accept a
connection only while one of them is free (``worker_connections`` =
``threads``): the listening socket's backlog is the one queue, served first
come first served by whichever thread frees up first, so that a request (the
health check among them) never waits inside a worker whose threads are busy
with slow pages while another worker has a thread idle. Keep-alive is
therefore off (a kept-alive idle connection would hold a thread's place);
the reverse proxy in front keeps its own connections to browsers.
"""
import os

workers = int(os.environ.get("DATARUN_WEB_WORKERS") or max(2, os.cpu_count() or 1))
threads = int(os.environ.get("DATARUN_WEB_THREADS") or 4)
worker_class = "gthread"
worker_connections = threads
keepalive = 0
