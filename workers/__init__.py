"""Celery tasks and the sandbox.

This package's ``__init__`` stays empty: ``workers.harness`` is imported inside
the sandbox, where neither Django nor the project settings may be loaded.
"""
