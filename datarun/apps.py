from django.apps import AppConfig


class DatarunConfig(AppConfig):
    name = "datarun"
    verbose_name = "Datarun evaluation service"
