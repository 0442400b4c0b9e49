"""Who may call what: the bearer check before every API view, and the scope each view needs.

Each API view declares its scope with :meth:`ApiBlueprint.requires`, which also documents the
security requirement and the 401/403 answers in OpenAPI. The check itself runs before the
view (and before rate limiting, which counts per key), so an unauthenticated request costs one
indexed read at most. A view that forgot to declare a scope needs ``admin``: closed by default.
"""

from __future__ import annotations

from flask import current_app, g, request
from flask_smorest import Blueprint

from ticket_manager.api.address_limits import count_refused_key
from ticket_manager.api.keys import ADMIN, KeyRefused, Principal, authenticate
from ticket_manager.api.problems import Problem, ProblemSchema

SECURITY_SCHEME = "bearerAuth"
SCOPE_ATTRIBUTE = "_required_scope"
PUBLIC_ATTRIBUTE = "_public"
CHALLENGE_HEADER = {
    "description": "The bearer challenge (RFC 6750).",
    "required": True,
    "schema": {"type": "string", "pattern": "^Bearer "},
}


class ApiBlueprint(Blueprint):
    """A flask-smorest blueprint whose views declare the scope they need."""

    def requires(self, scope: str):
        """Decorator: the view needs a bearer token with ``scope`` (``admin`` has them all)."""
        documented = self.doc(security=[{SECURITY_SCHEME: [scope]}])

        def decorator(view):
            setattr(view, SCOPE_ATTRIBUTE, scope)
            view = self.alt_response(
                401,
                schema=ProblemSchema,
                description="No valid bearer token.",
                headers={"WWW-Authenticate": CHALLENGE_HEADER},
            )(view)
            view = self.alt_response(
                403, schema=ProblemSchema, description=f"The token lacks `{scope}`."
            )(view)
            return documented(view)

        return decorator


def public(view):
    """Mark a view as open to everyone (health, documentation)."""
    setattr(view, PUBLIC_ATTRIBUTE, True)
    return view


def check_access() -> None:
    """``before_request`` for API blueprints: authenticate, then check the view's scope."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, PUBLIC_ATTRIBUTE, False) or request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        count_refused_key()
        raise Problem(
            401,
            "unauthenticated",
            "Send an API key as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="ticket-manager"'},
        )
    try:
        principal = _authenticate(token.strip())
    except KeyRefused as refused:
        count_refused_key()
        raise Problem(
            401,
            "invalid-token",
            _sentence(str(refused)),
            headers={"WWW-Authenticate": 'Bearer realm="ticket-manager", error="invalid_token"'},
        ) from None
    g.principal = principal
    scope = getattr(view, SCOPE_ATTRIBUTE, ADMIN)
    if not principal.allows(scope):
        raise Problem(
            403,
            "insufficient-scope",
            f"This token lacks the {scope} scope.",
            headers={
                "WWW-Authenticate": f'Bearer realm="ticket-manager", error="insufficient_scope", '
                f'scope="{scope}"'
            },
        )


def optional_principal() -> Principal | None:
    """For an open view: the caller if a valid bearer token came with the request, else None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return _authenticate(token.strip())
    except KeyRefused:
        count_refused_key()
        return None


def _authenticate(token: str) -> Principal:
    """An API key (``tm_...``), or a Microsoft Entra ID access token where that is enabled."""
    if token.startswith("tm_"):
        return authenticate(token)
    from ticket_manager.api.entra import entra_validator

    validator = entra_validator(current_app)
    if validator is None:
        return authenticate(token)  # refused with the API key's message
    return validator.authenticate(token)


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return f"{text[:1].upper()}{text[1:]}."


def current_principal() -> Principal:
    """The authenticated caller of this request."""
    return g.principal
