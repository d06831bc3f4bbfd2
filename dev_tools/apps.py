from django.apps import AppConfig


class DevToolsConfig(AppConfig):
    name = "dev_tools"
    verbose_name = "Development tools"
