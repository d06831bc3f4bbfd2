from django.apps import AppConfig


class HiringRequestsConfig(AppConfig):
    name = "hiring_requests"
