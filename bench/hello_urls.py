"""A bare django-ninja API: `GET /api/hello`, no authentication, no database; `/health/live` for the harness."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from ninja import NinjaAPI

api = NinjaAPI(urls_namespace="hello", docs_url=None)


@api.get("/hello")
def hello(request: HttpRequest) -> dict[str, str]:
    return {"hello": "world"}


def live(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("api/", api.urls), path("health/live", live)]
