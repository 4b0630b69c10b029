"""Admins' integration pages (included at the root by leadcrm.urls)."""

from django.urls import path

from integrations import views

urlpatterns = [
    path("integrations/api-keys/", views.api_keys_page, name="integrations-api-keys"),
    path("integrations/api-keys/<int:pk>/revoke/", views.api_key_revoke, name="integrations-api-key-revoke"),
    path("integrations/webhooks/", views.webhooks_page, name="integrations-webhooks"),
    path("integrations/webhooks/<int:pk>/", views.webhook_detail, name="integrations-webhook-detail"),
    path("integrations/deliveries/<int:pk>/replay/", views.delivery_replay, name="integrations-delivery-replay"),
]
