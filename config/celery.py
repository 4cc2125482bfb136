"""The Celery application shared by the web process, the workers and beat."""
import os

from celery import Celery
from celery.signals import worker_ready
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The embedded broker (filesystem://) writes each message whole before a
# consumer can take it (config/filesystem_broker.py says why).
TRANSPORT_ALIASES["filesystem"] = "config.filesystem_broker:Transport"

app = Celery("datarun")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app owns its tasks: datarun (trusted: scoring, reaper, datasets), databoard
# (contributivity) and workers (folds, in the sandbox; no database).
app.autodiscover_tasks(["datarun", "databoard", "workers"])

# `manage.py up` says "Datarun is running" only once its workers consume: it
# names a file here for each, which the worker writes when it is ready.
WORKER_READY_FILE_ENV = "DATARUN_WORKER_READY_FILE"


@worker_ready.connect
def _write_ready_file(**kwargs) -> None:
    path = os.environ.get(WORKER_READY_FILE_ENV)
    if path:
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")
