"""Every path of the public REST API (SPEC.md), in one place."""

from django.urls import path

from accounts import api as accounts_api
from capture import api as capture_api
from compliance import api as compliance_api
from enrichment import api as enrichment_api
from integrations import api as integrations_api
from leadcrm import api_jobs, audit_api
from leads import api as leads_api
from nurturing import api as nurturing_api
from routing import api as routing_api
from scoring import api as scoring_api

urlpatterns = [
    # nurturing: segments
    path("segments/", nurturing_api.SegmentList.as_view(), name="segment-list"),
    path("segments/count/", nurturing_api.SegmentCount.as_view(), name="segment-count"),
    path("segments/<int:pk>/", nurturing_api.SegmentDetail.as_view(), name="segment-detail"),
    path("segments/<int:pk>/members/", nurturing_api.SegmentMembers.as_view(), name="segment-members"),
    path("segments/<int:pk>/changes/", nurturing_api.SegmentChanges.as_view(), name="segment-changes"),
    # nurturing: e-mail
    path("email-templates/", nurturing_api.EmailTemplateList.as_view(), name="email-template-list"),
    path("email-templates/<int:pk>/", nurturing_api.EmailTemplateDetail.as_view(), name="email-template-detail"),
    path(
        "email-templates/<int:pk>/preview/", nurturing_api.EmailTemplatePreview.as_view(), name="email-template-preview"
    ),
    path("messages/", nurturing_api.MessageList.as_view(), name="message-list"),
    # nurturing: sequences and enrollments
    path("sequences/", nurturing_api.SequenceList.as_view(), name="sequence-list"),
    path("sequences/<int:pk>/", nurturing_api.SequenceDetail.as_view(), name="sequence-detail"),
    path("sequences/<int:pk>/enroll/", nurturing_api.SequenceEnroll.as_view(), name="sequence-enroll"),
    path("sequences/<int:pk>/stats/", nurturing_api.SequenceStats.as_view(), name="sequence-stats"),
    path("enrollments/", nurturing_api.EnrollmentList.as_view(), name="enrollment-list"),
    path("enrollments/<int:pk>/stop/", nurturing_api.EnrollmentStop.as_view(), name="enrollment-stop"),
    path("email-templates/<int:pk>/test/", nurturing_api.EmailTemplateTestSend.as_view(), name="email-template-test"),
    path("sender-identities/", nurturing_api.SenderIdentityList.as_view(), name="sender-identity-list"),
    path("sender-identities/<int:pk>/", nurturing_api.SenderIdentityDetail.as_view(), name="sender-identity-detail"),
    path("topics/", nurturing_api.TopicList.as_view(), name="topic-list"),
    path(
        "consent-confirmations/",
        nurturing_api.ConsentConfirmationRequest.as_view(),
        name="consent-confirmation-request",
    ),
    # nurturing: workflows
    path("workflows/", nurturing_api.WorkflowList.as_view(), name="workflow-list"),
    path("workflows/<int:pk>/", nurturing_api.WorkflowDetail.as_view(), name="workflow-detail"),
    path("workflows/<int:pk>/runs/", nurturing_api.WorkflowRuns.as_view(), name="workflow-runs"),
    path("leads/", leads_api.LeadListCreate.as_view(), name="lead-list"),
    path("leads/bulk/", leads_api.LeadBulk.as_view(), name="lead-bulk"),
    path("leads/<int:pk>/", leads_api.LeadDetail.as_view(), name="lead-detail"),
    path("leads/<int:pk>/transition/", leads_api.LeadTransition.as_view(), name="lead-transition"),
    path("leads/<int:pk>/history/", leads_api.LeadHistory.as_view(), name="lead-history"),
    path("leads/<int:pk>/bant/", leads_api.LeadBant.as_view(), name="lead-bant"),
    path("leads/<int:pk>/opportunity/", leads_api.LeadOpportunity.as_view(), name="lead-opportunity"),
    path("events/", leads_api.EventsCreate.as_view(), name="events"),
    path("tasks/", leads_api.TaskListCreate.as_view(), name="task-list"),
    path("tasks/<int:pk>/", leads_api.TaskDetail.as_view(), name="task-detail"),
    path("metrics/funnel/", leads_api.FunnelMetrics.as_view(), name="metrics-funnel"),
    path("metrics/attribution/", leads_api.AttributionMetrics.as_view(), name="metrics-attribution"),
    path("users/", accounts_api.UserListCreate.as_view(), name="user-list"),
    path("users/<int:pk>/", accounts_api.UserDetail.as_view(), name="user-detail"),
    path("teams/", accounts_api.TeamListCreate.as_view(), name="team-list"),
    path("teams/<int:pk>/", accounts_api.TeamDetail.as_view(), name="team-detail"),
    path("notifications/", accounts_api.NotificationList.as_view(), name="notification-list"),
    path("notifications/read/", accounts_api.NotificationsRead.as_view(), name="notifications-read"),
    path("scoring/rulesets/", scoring_api.RuleSetListCreate.as_view(), name="scoring-ruleset-list"),
    path("scoring/rulesets/<int:pk>/", scoring_api.RuleSetDetail.as_view(), name="scoring-ruleset-detail"),
    path("scoring/rulesets/<int:pk>/activate/", scoring_api.RuleSetActivate.as_view(), name="scoring-ruleset-activate"),
    path("scoring/rulesets/<int:pk>/copy/", scoring_api.RuleSetCopy.as_view(), name="scoring-ruleset-copy"),
    path("scoring/rulesets/<int:pk>/backtest/", scoring_api.RuleSetBacktest.as_view(), name="scoring-ruleset-backtest"),
    path("scoring/rulesets/<int:pk>/rules/<str:kind>/", scoring_api.RuleCreate.as_view(), name="scoring-rule-create"),
    path("scoring/rules/<str:kind>/<int:pk>/", scoring_api.RuleDetail.as_view(), name="scoring-rule-detail"),
    path("scoring/leads/<int:pk>/scores/", scoring_api.LeadScores.as_view(), name="scoring-lead-scores"),
    path("scoring/predictive/", scoring_api.PredictiveInfo.as_view(), name="scoring-predictive"),
    path("scoring/predictive/train/", scoring_api.PredictiveTrain.as_view(), name="scoring-predictive-train"),
    # routing (issue #4)
    path("routing-rules/", routing_api.RoutingRuleList.as_view(), name="routing-rule-list"),
    path("routing-rules/<int:pk>/", routing_api.RoutingRuleDetail.as_view(), name="routing-rule-detail"),
    path("territories/", routing_api.TerritoryList.as_view(), name="territory-list"),
    path("territories/<int:pk>/", routing_api.TerritoryDetail.as_view(), name="territory-detail"),
    path("partners/", routing_api.PartnerList.as_view(), name="partner-list"),
    path("partners/<int:pk>/", routing_api.PartnerDetail.as_view(), name="partner-detail"),
    path("sla-policies/", routing_api.SlaPolicyList.as_view(), name="sla-policy-list"),
    path("sla-policies/<int:pk>/", routing_api.SlaPolicyDetail.as_view(), name="sla-policy-detail"),
    path("routing-settings/", routing_api.RoutingSettingsView.as_view(), name="routing-settings"),
    path("leads/<int:pk>/route/", routing_api.LeadRoute.as_view(), name="lead-route"),
    path("partner-offers/", routing_api.PartnerOfferList.as_view(), name="partner-offer-list"),
    path("partner-offers/<int:pk>/accept/", routing_api.PartnerOfferAccept.as_view(), name="partner-offer-accept"),
    path("partner-offers/<int:pk>/decline/", routing_api.PartnerOfferDecline.as_view(), name="partner-offer-decline"),
    path("teams/<int:pk>/load/", routing_api.TeamLoad.as_view(), name="team-load"),
    path("routing/route-unassigned/", routing_api.RouteUnassigned.as_view(), name="routing-route-unassigned"),
    path("jobs/<int:pk>/", api_jobs.JobDetail.as_view(), name="job-detail"),
    path("metrics/sla/", routing_api.SlaCompliance.as_view(), name="metrics-sla"),
    path("audit/", audit_api.AuditList.as_view(), name="audit-list"),
    # capture, integrations (webhooks, API keys), compliance (GDPR): each app's own list
    *capture_api.urlpatterns,
    *integrations_api.urlpatterns,
    *compliance_api.urlpatterns,
    *enrichment_api.urlpatterns,
]
