"""Server-rendered scoring page (included at "scoring/" by leadcrm.urls)."""

from django.urls import path

from scoring import views

urlpatterns = [path("", views.scoring_page, name="scoring")]
