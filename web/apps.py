from django.apps import AppConfig


class WebConfig(AppConfig):
    """The server-rendered web app for clients and engineers (docs/web.md)."""

    name = "web"
    default_auto_field = "django.db.models.BigAutoField"
