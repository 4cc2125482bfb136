"""The Celery application shared by the web process, the workers and beat."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("datarun")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app owns its tasks: datarun (trusted: scoring, reaper, datasets), databoard
# (contributivity) and workers (folds, in the sandbox; no database).
app.autodiscover_tasks(["datarun", "databoard", "workers"])
