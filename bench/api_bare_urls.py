"""The baseline of ``bench.api_throughput``: the same document read and create on bare DRF.

Plain DRF generics over the same model, output serializer (``DocumentOut``,
also for the create's answer, with its ``Location``, as the full stack
answers) and token authentication, without our base view (no
Idempotency-Key, no 413 guard, no membership or role lookup) and without our
middleware (no rate limit, no residency, no sessions).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import path
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from regions.views import live
from saas.api.authentication import BearerTokenAuthentication
from saas.api.serializers import DocumentOut
from saas.models import Document


class BareDocumentIn(serializers.ModelSerializer[Document]):
    class Meta:
        model = Document
        fields = ("project", "title", "body")


class BareDocumentDetail(generics.RetrieveAPIView[Document]):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    serializer_class = DocumentOut
    lookup_url_kwarg = "document_id"

    def get_queryset(self) -> QuerySet[Document]:
        auth: Any = self.request.auth
        return Document.objects.filter(organization=auth.organization)


class BareDocumentCreate(generics.CreateAPIView[Document]):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    serializer_class = BareDocumentIn

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # DRF's CreateModelMixin.create, answering what the full stack answers (the
        # document as ``DocumentOut`` and its Location), so both do the same work.
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        auth: Any = request.auth
        document = serializer.save(
            organization=auth.organization, created_by=auth.user, home_region=auth.organization.home_region
        )
        return Response(
            DocumentOut(document).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"{request.path}/{document.pk}"},
        )


urlpatterns = [
    path("health/live", live),
    path("api/v1/orgs/<slug:org_slug>/documents/<uuid:document_id>", BareDocumentDetail.as_view()),
    path("api/v1/orgs/<slug:org_slug>/documents", BareDocumentCreate.as_view()),
]
