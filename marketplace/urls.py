from django.contrib import admin
from django.urls import path

from marketplace import health, pages
from marketplace.api import api

admin.site.site_header = "Vetted administration"
admin.site.site_title = "Vetted admin"
admin.site.index_title = "Run the marketplace"

urlpatterns = [
    path("", pages.landing, name="landing"),
    path("docs/demo", pages.demo_story, name="demo-story"),
    # Browsers ask for /favicon.ico on every page, the admin's and the API docs' included.
    path("favicon.ico", pages.favicon),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
]
