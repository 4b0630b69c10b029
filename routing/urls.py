"""The manager page (included at "" by leadcrm.urls)."""

from django.urls import path

from routing import views

urlpatterns = [
    path("team/", views.team_page, name="team"),
    path("team/reassign/", views.team_reassign, name="team-reassign"),
    path("team/sellers/<int:pk>/", views.team_seller, name="team-seller"),
]
