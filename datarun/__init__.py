"""Datarun: the Django project and the evaluation service."""
from datarun.celery import app as celery_app

__all__ = ("celery_app",)
