"""Pages reached from e-mails, with no login (signed tokens; nurturing.views_public), and
the e-mail providers' webhooks (basic auth). Included at the site's root by leadcrm.urls,
since the paths are printed in e-mails and configured at the providers."""

from django.urls import path

from nurturing import views_public

urlpatterns = [
    path("u/<str:token>/", views_public.unsubscribe, name="unsubscribe"),
    path("c/<str:token>/", views_public.consent_confirm, name="consent-confirm"),
    path("t/o/<str:token>.gif", views_public.track_open, name="track-open"),
    path("t/c/<str:token>", views_public.track_click, name="track-click"),
    path("webhooks/email/<slug:esp>/tracking/", views_public.email_tracking_webhook, name="email-webhook-tracking"),
    path("webhooks/email/<slug:esp>/inbound/", views_public.email_inbound_webhook, name="email-webhook-inbound"),
]
