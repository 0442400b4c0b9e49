"""The Flask application factory: configuration is read once here and handed to everything."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from ticket_manager.config import load_settings
from ticket_manager.database import configure_sqlite, engine_options
from ticket_manager.extensions import SETTINGS_EXTENSION, db, migrate
from ticket_manager.logs import configure_logging


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from ``environ`` (default: the process environment plus `.env`)."""
    settings = load_settings(environ)
    configure_logging(settings)
    app = Flask("ticket_manager")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=settings.database_uri,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.database_uri),
        APPLICATION_CONTEXT=settings.application_context,
        OPENAPI_VERSION=settings.openapi_version,
    )
    app.extensions[SETTINGS_EXTENSION] = settings

    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        configure_sqlite(db.engine)

    from ticket_manager import models  # noqa: F401 - registers the tables with the metadata
    from ticket_manager.commands import register_commands

    register_commands(app)

    from ticket_manager.web.jira_automation import blueprint as jira_automation
    from ticket_manager.web.jira_webhook import blueprint as jira_webhook
    from ticket_manager.web.notifications import blueprint as notifications

    prefix = settings.application_context.rstrip("/")
    app.register_blueprint(notifications, url_prefix=prefix)
    app.register_blueprint(jira_webhook, url_prefix=prefix)
    app.register_blueprint(jira_automation, url_prefix=prefix)

    from ticket_manager.api import init_api

    init_api(app, settings)

    from ticket_manager.web import metrics

    metrics.init_app(app)

    from ticket_manager.dashboard import blueprint as dashboard

    app.register_blueprint(dashboard, url_prefix=prefix or None)
    return app
