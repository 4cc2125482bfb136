"""Datarun: the evaluation service (problems, datasets, folds, runs, scoring).

Importing it, or any module of it, has no side effects: the project's wiring
(settings, URLs, Celery) lives in :mod:`config`.
"""
