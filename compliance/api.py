"""The app's REST API views; `urlpatterns` is included under /api/v1/ by leadcrm/api_urls.py."""

urlpatterns: list = []
