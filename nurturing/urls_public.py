"""Pages reached from e-mails, with no login (signed tokens; nurturing.views_public).
Included at the site's root by leadcrm.urls, since the paths are printed in e-mails."""

from django.urls import path

from nurturing import views_public

urlpatterns = [
    path("u/<str:token>/", views_public.unsubscribe, name="unsubscribe"),
    path("t/o/<str:token>.gif", views_public.track_open, name="track-open"),
    path("t/c/<str:token>", views_public.track_click, name="track-click"),
]
