from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_delete, post_save

        # metrics: its task signals; lookups: registers skills__overlap and skills__contains_all.
        from marketplace import admin_login, lookups, metrics, realtime  # noqa: F401
        from marketplace.error_reports import init_error_reports

        admin_login.connect()
        init_error_reports(dsn=settings.SENTRY_DSN, environment=settings.DJANGO_ENV)

        # Logging out or deactivating a user closes the websockets that rest on it (marketplace.realtime).
        user_logged_out.connect(realtime.on_logged_out, dispatch_uid="realtime.logged_out")
        post_save.connect(realtime.on_user_saved, sender=get_user_model(), dispatch_uid="realtime.user_saved")
        # Deleting a token or a user (the admin can) ends their sockets like revoking does.
        post_delete.connect(realtime.on_user_deleted, sender=get_user_model(), dispatch_uid="realtime.user_deleted")
        post_delete.connect(
            realtime.on_token_deleted, sender="accounts.ApiToken", dispatch_uid="realtime.token_deleted"
        )
