from django.apps import AppConfig


class EnrichmentConfig(AppConfig):
    name = "enrichment"
    verbose_name = "Enrichment"

    def ready(self) -> None:
        """What providers set on a lead is about the person: the GDPR export lists it (its
        lead foreign key is found by compliance) and the erasure deletes it."""
        from compliance import services as compliance

        compliance.personal_data_register(
            "enrichment.EnrichmentChange", delete=True, note="What providers set on the lead: deleted on erasure."
        )
