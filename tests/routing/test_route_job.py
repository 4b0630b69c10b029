"""Routing the unassigned leads as the resumable job `routing.route` (issue 14): chunks by lead
id, each chunk's assignments with the cursor and counts in one transaction, so a crash
mid-chunk rolls that chunk back with its cursor and the next run routes it once; owned
leads are skipped, pooled ones not written again; one live bulk routing at a time; the API
answers 202 with the job and its status URL; who started it is audited."""

from __future__ import annotations

import pytest
from django.db.models import Count

from leadcrm import jobs
from leadcrm.actors import Actor
from leadcrm.models import AuditEntry, Job, JobStatus
from leads.models import Assignment, Lead
from routing import services
from routing.models import RoutingRule
from routing.services import route_job

pytestmark = pytest.mark.django_db

BOT = Actor.automation()


@pytest.fixture
def fr_rule(org):
    for u in (org.s1, org.s2, org.s3):
        u.capacity = 1000
        u.save()
    return RoutingRule.objects.create(name="France", position=1, conditions={}, team=org.fr)


def _assignments_per_lead() -> set[int]:
    return set(Assignment.objects.values("lead").annotate(n=Count("id")).values_list("n", flat=True))


def test_route_job_goes_by_chunks_skips_the_owned_and_counts(org, fr_rule, mql):
    leads = [mql() for _ in range(25)]
    owned = mql(owner=org.s1)
    closed = mql(stage="LOST")
    request = services.route_unassigned_start(actor=Actor(org.admin, "user"), chunk_size=10)
    assert request.created
    seen = []
    job = jobs.job_run(request.job.pk, on_chunk=lambda cursor, counts: seen.append(cursor["after"]))
    ids = [x.pk for x in leads]
    assert job.status == JobStatus.DONE and seen == [ids[9], ids[19], ids[24]]
    assert job.counts == {"leads": 25, "assigned": 25, "pool": 0, "partner": 0, "unmatched": 0, "skipped": 0}
    assert not Lead.objects.filter(pk__in=ids, owner__isnull=True).exists()
    assert Assignment.objects.count() == 25 and _assignments_per_lead() == {1}
    assert set(Assignment.objects.values_list("actor_id", flat=True)) == {org.admin.pk}  # who started it
    owned.refresh_from_db()
    closed.refresh_from_db()
    assert owned.owner == org.s1 and closed.owner is None
    # A second run finds nobody left to route and writes nothing.
    again = jobs.job_run(services.route_unassigned_start(actor=BOT).job.pk)
    assert again.counts == {} and Assignment.objects.count() == 25


def test_a_crash_mid_chunk_rolls_back_its_assignments_with_its_cursor(org, fr_rule, mql, monkeypatch):
    ids = [mql().pk for _ in range(25)]
    calls = []
    original = services.leads_route_batch

    def crash_after_the_third_batch(**kwargs):
        result = original(**kwargs)  # the chunk's owners, Assignment rows and SLA clocks are written ...
        calls.append(len(kwargs["lead_ids"]))
        if len(calls) == 3:
            raise RuntimeError("worker lost")  # ... then the process dies before its cursor moves
        return result

    monkeypatch.setattr(route_job, "leads_route_batch", crash_after_the_third_batch)
    job = services.route_unassigned_start(actor=BOT, chunk_size=10).job
    left = jobs.job_run(job.pk)
    assert left.status == JobStatus.QUEUED and left.error == "worker lost"
    assert left.cursor == {"after": ids[19]} and left.counts["leads"] == 20 and left.counts["assigned"] == 20
    assert Assignment.objects.count() == 20
    assert Lead.objects.filter(pk__in=ids[20:], owner__isnull=True).count() == 5  # rolled back with the cursor

    done = jobs.job_run(job.pk)
    assert done.status == JobStatus.DONE and done.attempts == 2 and calls == [10, 10, 5, 5]
    assert done.counts == {"leads": 25, "assigned": 25, "pool": 0, "partner": 0, "unmatched": 0, "skipped": 0}
    assert Assignment.objects.count() == 25 and _assignments_per_lead() == {1}


def test_pooled_and_unmatched_leads_are_counted_not_written_twice(org, mql):
    RoutingRule.objects.create(name="DE", position=1, conditions={"country": ["DE"]}, team=org.de)
    org.de_sdr.capacity = 1
    org.de_sdr.save()
    de = [mql(country="DE") for _ in range(3)]
    nowhere = mql(country="IT")
    job = jobs.job_run(services.route_unassigned_start(actor=BOT).job.pk)
    assert job.counts == {"leads": 4, "assigned": 1, "pool": 2, "partner": 0, "unmatched": 1, "skipped": 0}
    assert Assignment.objects.count() == 3  # one assignment, two moves to the DE pool
    again = jobs.job_run(services.route_unassigned_start(actor=BOT).job.pk)
    assert again.counts == {"leads": 3, "assigned": 0, "pool": 2, "partner": 0, "unmatched": 1, "skipped": 0}
    assert Assignment.objects.count() == 3  # still in that pool: no second write
    assert Lead.objects.get(pk=nowhere.pk).owner is None and len(de) == 3


def test_one_bulk_routing_at_a_time_and_audited(org, fr_rule, mql):
    mql()
    first = services.route_unassigned_start(actor=Actor(org.admin, "user"), team=org.fr)
    second = services.route_unassigned_start(actor=Actor(org.manager, "user"))
    assert second.job.pk == first.job.pk and not second.created
    assert Job.objects.get(pk=first.job.pk).params["team"] is None  # widened to every unowned lead
    entries = AuditEntry.objects.filter(action="routing.route_unassigned.start").order_by("id")
    assert [(e.actor_id, e.target_id, e.details["joined"]) for e in entries] == [
        (org.admin.pk, str(first.job.pk), False),
        (org.manager.pk, str(first.job.pk), True),
    ]


def test_api_answers_202_with_the_job_and_its_status(
    org, fr_rule, mql, auth_client, django_capture_on_commit_callbacks
):
    ids = [mql().pk for _ in range(3)]
    admin = auth_client(org.admin)
    with django_capture_on_commit_callbacks(execute=True):  # eager: the job runs once committed
        r = admin.post("/api/v1/routing/route-unassigned/", {}, format="json")
    assert r.status_code == 202, r.content
    body = r.json()
    assert body["job"]["kind"] == "routing.route" and body["joined"] is False
    assert r["Location"] == body["status_url"] and body["status_url"].endswith(f"/api/v1/jobs/{body['job']['id']}/")
    status = admin.get(body["status_url"]).json()
    assert status["status"] == "done" and status["counts"]["assigned"] == 3
    assert not Lead.objects.filter(pk__in=ids, owner__isnull=True).exists()
    # The job is its starter's (and admins'): another user does not learn it exists.
    assert auth_client(org.manager).get(body["status_url"]).status_code == 404


def test_api_who_may_route_in_bulk(org, auth_client):
    url = "/api/v1/routing/route-unassigned/"
    assert auth_client(org.s1).post(url, {}, format="json").status_code == 403
    assert auth_client(org.marketing).post(url, {}, format="json").status_code == 403
    manager = auth_client(org.manager)
    r = manager.post(url, {}, format="json")
    assert r.status_code == 400 and "team" in r.json()
    r = manager.post(url, {"team": org.de.pk}, format="json")
    assert r.status_code == 400 and "team" in r.json()
    assert manager.post(url, {"team": "x"}, format="json").status_code == 400
    assert manager.post(url, {"team": org.fr.pk}, format="json").status_code == 202
    assert Job.objects.get().params["team"] == org.fr.pk
