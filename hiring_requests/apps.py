from django.apps import AppConfig


class HiringRequestsConfig(AppConfig):
    name = "hiring_requests"
    verbose_name = "Hiring requests"
