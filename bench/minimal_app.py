"""The floor for bench_pages: a minimal Flask + SQLAlchemy page rendering 50 rows.

``gunicorn bench.minimal_app:app`` with ``DATABASE_URL`` set: one query (50 units by code)
through a pooled engine and one Jinja template, nothing else (no sign-in, no CSRF, no
session). bench_pages serves it exactly as it serves Escalate and compares requests/s.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask, render_template_string

PAGE = """<!DOCTYPE html><html lang="en-GB"><head><title>Units</title></head><body>
<table><thead><tr><th>Code</th><th>Name</th><th>Kind</th></tr></thead><tbody>
{% for row in rows %}<tr><td>{{ row.code }}</td><td>{{ row.name }}</td><td>{{ row.kind }}</td></tr>
{% endfor %}</tbody></table></body></html>"""

app = Flask(__name__)
engine = sa.create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
QUERY = sa.text("SELECT code, name, kind FROM units ORDER BY code LIMIT 50")


@app.get("/")
def units():
    """Fifty rows, rendered."""
    with engine.connect() as conn:
        rows = conn.execute(QUERY).all()
    return render_template_string(PAGE, rows=rows)
