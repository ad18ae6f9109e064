from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks of single sign-on and ROUTING_LOCAL_LOGIN.
        from . import checks  # noqa: F401
