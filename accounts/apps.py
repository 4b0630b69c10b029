from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and teams"

    def ready(self) -> None:
        from accounts import selectors
        from accounts.models import User
        from leadcrm import selectors as kernel_selectors

        kernel_selectors.readable_targets(User._meta.label_lower, selectors.users_whose_history_is_readable_by)
