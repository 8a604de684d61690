"""Bearer-token authentication and scopes for ``/api/v1``.

Only ``Authorization: Bearer <token>`` authenticates: the session cookie of a signed-in
browser is never looked at, so a page on another site cannot make a signed-in person's
browser call the API (which is why the API needs no CSRF token).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import g, request

from workflow_app.api.problems import ApiProblem
from workflow_app.models.api_tokens import ApiToken
from workflow_app.models.org import Person
from workflow_app.services.api_tokens import TokenRefused, authenticate
from workflow_app.services.unit_of_work import transaction

REALM = 'Bearer realm="escalate"'


def _refuse(detail: str, *, invalid: bool) -> ApiProblem:
    challenge = REALM + (', error="invalid_token"' if invalid else "")
    return ApiProblem(401, detail, headers={"WWW-Authenticate": challenge})


def authenticate_request() -> ApiToken:
    """The token of this request, checked once and kept on ``g``.

    :raises ApiProblem: 401 when the header is missing or the token may not be used.
    """
    if "api_token" in g:
        return g.api_token
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.strip().partition(" ")
    if not header:
        raise _refuse(
            "Send an API token in the Authorization header: 'Authorization: Bearer <token>'. "
            "A system administrator creates tokens under Administration, API tokens.",
            invalid=False,
        )
    if scheme.lower() != "bearer" or not secret.strip():
        raise _refuse(
            "The Authorization header must be 'Bearer <token>'.",
            invalid=True,
        )
    try:
        with transaction():  # records last_used_at
            token = authenticate(secret.strip())
    except TokenRefused as refused:
        raise _refuse(str(refused), invalid=True) from None
    g.api_token = token
    g.api_person = token.person
    return token


def api_person() -> Person:
    """The person the request's token acts as."""
    return authenticate_request().person


def require_scope(scope: str) -> Callable:
    """Decorate a view: the token must carry ``scope`` (else 403 insufficient_scope)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            token = authenticate_request()
            if scope not in token.scope_set:
                raise ApiProblem(
                    403,
                    f"This token does not have the '{scope}' scope (it has "
                    f"{', '.join(sorted(token.scope_set))}). Ask a system administrator for "
                    f"a token with '{scope}'.",
                    headers={
                        "WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'
                    },
                    slug="insufficient-scope",
                )
            return view(*args, **kwargs)

        wrapped.required_scope = scope
        return wrapped

    return decorator
