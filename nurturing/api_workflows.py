"""The workflow API: thin views, input serializer → service/selector → output serializer.

Marketing and admins write workflows; every other signed-in user reads them, and the runs
of the leads it may see (an SDR's list shows its own leads' runs, never another's)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from leadcrm.actors import actor_of
from leadcrm.api import StableCursorPagination, checked_object
from leadcrm.permissions import roles
from nurturing import selectors, services
from nurturing.models import Workflow
from nurturing.serializers_workflows import WorkflowInputSerializer, WorkflowOutputSerializer, WorkflowRunSerializer

TAG = ["workflows"]
READ_ALL = (Role.MARKETING, Role.MANAGER, Role.SDR)
PERMISSIONS = [IsAuthenticated, roles(read=READ_ALL, write=(Role.MARKETING,))]
DETAIL_PERMISSIONS = [IsAuthenticated, roles(read=READ_ALL, write=(Role.MARKETING,), detail=True)]


def _out(request, workflows: list[Workflow], many: bool = False):
    counts = selectors.workflow_run_counts(workflow_ids=[w.pk for w in workflows], user=request.user)
    return WorkflowOutputSerializer(workflows if many else workflows[0], many=many, context={"counts": counts}).data


class WorkflowList(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(tags=TAG, summary="List workflows", responses=WorkflowOutputSerializer(many=True))
    def get(self, request):
        return Response(_out(request, list(selectors.workflows_visible_to(request.user)), many=True))

    @extend_schema(
        tags=TAG,
        summary="Create a workflow",
        description="Bad triggers, conditions or actions answer 400 with field errors "
        '(actions keyed by their index, e.g. "actions[1]").',
        request=WorkflowInputSerializer,
        responses={201: WorkflowOutputSerializer},
    )
    def post(self, request):
        data = WorkflowInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workflow = services.workflow_create(actor=actor_of(request), **data.validated_data)
        return Response(_out(request, [workflow]), status=status.HTTP_201_CREATED)


class WorkflowDetail(APIView):
    permission_classes = DETAIL_PERMISSIONS

    def _workflow(self, request, pk: int) -> Workflow:
        return checked_object(self, request, selectors.workflows_visible_to(request.user), pk)

    @extend_schema(tags=TAG, summary="Read a workflow", responses=WorkflowOutputSerializer)
    def get(self, request, pk: int):
        return Response(_out(request, [self._workflow(request, pk)]))

    @extend_schema(
        tags=TAG, summary="Edit a workflow", request=WorkflowInputSerializer, responses=WorkflowOutputSerializer
    )
    def patch(self, request, pk: int):
        workflow = self._workflow(request, pk)
        data = WorkflowInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        workflow = services.workflow_update(actor=actor_of(request), workflow_id=workflow.pk, **fields)
        return Response(_out(request, [workflow]))

    @extend_schema(tags=TAG, summary="Delete a workflow (and its runs)", responses={204: None})
    def delete(self, request, pk: int):
        workflow = self._workflow(request, pk)
        services.workflow_delete(actor=actor_of(request), workflow_id=workflow.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunsPagination(StableCursorPagination):
    ordering = ("-at", "-id")


class WorkflowRuns(GenericAPIView):
    """Each run, newest first: its trigger, the conditions' answer, each action's outcome."""

    permission_classes = PERMISSIONS
    pagination_class = RunsPagination
    serializer_class = WorkflowRunSerializer
    queryset = Workflow.objects.none()  # the path's `pk` is a workflow's (for the schema)

    @extend_schema(
        tags=TAG, operation_id="workflow_runs", summary="A workflow's runs", responses=WorkflowRunSerializer(many=True)
    )
    def get(self, request, pk: int):
        workflow = checked_object(self, request, selectors.workflows_visible_to(request.user), pk)
        page = self.paginate_queryset(selectors.workflow_runs(workflow_id=workflow.pk, user=request.user))
        return self.get_paginated_response(WorkflowRunSerializer(page, many=True).data)
