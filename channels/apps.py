from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    """Sales channels. Label ``channels`` is ours: Django Channels is never installed here."""

    name = "channels"
    label = "channels"
    verbose_name = "Sales channels"

    def ready(self) -> None:
        from channels import checks, signals  # noqa: F401  (registers system checks and receivers)
