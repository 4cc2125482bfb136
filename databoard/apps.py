from django.apps import AppConfig


class DataboardConfig(AppConfig):
    name = "databoard"
    verbose_name = "Databoard"
