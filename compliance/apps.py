from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance (GDPR)"

    def ready(self) -> None:
        """The tables no lead foreign key reaches, and the free-text columns to blank on
        erasure (`compliance.registry`); other apps register theirs in their own ready()."""
        from compliance import services

        services.register_builtin_sources()
