from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django_otp.admin import OTPAdminSite

from marketplace import health, metrics, pages
from marketplace.api import api
from marketplace.notifications import views as notification_views

if settings.ADMIN_REQUIRE_OTP:
    # Staff sign in with their password and a TOTP code; without a confirmed device they cannot.
    admin.site.__class__ = OTPAdminSite

admin.site.site_header = "Vetted administration"
admin.site.site_title = "Vetted admin"
admin.site.index_title = "Run the marketplace"

urlpatterns = [
    path("", pages.landing, name="landing"),
    path("docs/demo", pages.demo_story, name="demo-story"),
    # Browsers ask for /favicon.ico on every page, the admin's and the API docs' included.
    path("favicon.ico", pages.favicon),
    path("api/", api.urls),
    path("email/unsubscribe/<str:token>", notification_views.unsubscribe, name="email-unsubscribe"),
    path(settings.ADMIN_PATH, admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("", include("web.urls")),
]
