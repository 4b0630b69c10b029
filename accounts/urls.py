"""Signing in and out, and one's notifications (included at "" by leadcrm.urls)."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("notifications/", views.notifications, name="notifications"),
]
