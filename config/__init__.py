"""The project's wiring: settings, URLs, the Celery app and the WSGI entry.

Loading the Celery app here makes it the current app of any process that
loads the settings, so that ``shared_task`` and ``current_app.send_task`` in
the apps reach it without importing this package.
"""
from config.celery import app as celery_app

__all__ = ("celery_app",)
