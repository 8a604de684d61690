"""WSGI entry point for gunicorn: ``gunicorn wsgi:app``."""

from workflow_app import create_app

app = create_app()
