"""Recovery / improvement plans: writing, reviewing (``authoring``), delivering and
exporting them (``delivery``). One blueprint, one module per concern."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("plans", __name__, url_prefix="/plans")

from workflow_app.web.plans import authoring, delivery  # noqa: E402,F401  (registers routes)
