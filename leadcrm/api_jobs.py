"""The status of a background job (`GET /api/v1/jobs/{id}/`): what a 202 answer that started
long work points at. Its starter and admins see it; anyone else gets 404."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from leadcrm.models import Job, JobStatus


class JobSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=JobStatus.choices)
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="What the committed chunks did so far, e.g. leads, changed."
    )
    error = serializers.CharField(help_text="The last failed attempt's message (empty when none).")

    class Meta:
        model = Job
        fields = ["id", "kind", "status", "counts", "attempts", "error", "created_at", "heartbeat_at", "finished_at"]
        read_only_fields = fields


class JobStartedSerializer(serializers.Serializer):
    """The answer (202) of an endpoint that started (or joined) a job."""

    job = JobSerializer()
    status_url = serializers.CharField(help_text="GET it for the job's progress.")
    joined = serializers.BooleanField(help_text="A job was already queued or running: this request joined it.")
    after_current_run = serializers.BooleanField(
        help_text="The job was already running: one more run follows it, for what changed meanwhile."
    )


def jobs_visible_to(user):
    qs = Job.objects.all()
    return qs if user.is_admin_role else qs.filter(created_by=user)


def job_started_response(request, job_request) -> Response:
    """202 with the job, its status URL and whether the request joined a live one."""
    job = Job.objects.get(pk=job_request.job.pk)
    url = request.build_absolute_uri(reverse("api:job-detail", args=[job.pk]))
    body = {
        "job": JobSerializer(job).data,
        "status_url": url,
        "joined": not job_request.created,
        "after_current_run": job_request.follow_up,
    }
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class JobDetail(APIView):
    serializer_class = JobSerializer

    @extend_schema(responses=JobSerializer)
    def get(self, request, pk: int):
        return Response(JobSerializer(get_object_or_404(jobs_visible_to(request.user), pk=pk)).data)
