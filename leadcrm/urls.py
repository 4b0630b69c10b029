from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its start-up script served by the same view (?script), not inline: CSP.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs.html"),
        name="api-docs",
    ),
    path("api/v1/", include(("leadcrm.api_urls", "api"))),  # names: "api:<name>"
    path("scoring/", include("scoring.urls")),
    path("nurturing/", include("nurturing.urls")),
    path("", include("nurturing.urls_public")),  # reached from e-mails, with no login
    path("", include("accounts.urls")),
    path("", include("leads.urls")),
    path("", include("routing.urls")),
    path("", include("capture.urls")),
    path("", include("integrations.urls")),
    path("", include("compliance.urls")),
]

handler400 = "leadcrm.errorpages.bad_request"
handler403 = "leadcrm.errorpages.permission_denied"
handler404 = "leadcrm.errorpages.page_not_found"
handler500 = "leadcrm.errorpages.server_error"
