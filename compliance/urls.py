"""The app's pages; `urlpatterns` is included at the root by leadcrm/urls.py."""

from django.urls import path

from compliance import views

urlpatterns: list = [
    path("leads/<int:pk>/privacy/export/", views.lead_export, name="lead-privacy-export"),
    path("leads/<int:pk>/privacy/erase/", views.lead_erase, name="lead-privacy-erase"),
]
