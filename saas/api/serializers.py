"""Input and output serializers. Inputs reject unknown fields; outputs never include secrets."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from saas.models import ApiToken, Document, Membership, Organization, Project, User

# Fields the schema declares as strings: DRF would coerce a JSON number (``"name": 42``) or take
# ``"project": 42`` as ``UUID(int=42)``; the API refuses them as the schema says.
STRING_FIELDS = (serializers.CharField, serializers.UUIDField, serializers.ChoiceField)


class InputSerializer(serializers.Serializer[Any]):
    """Rejects fields it does not know, so a typo is an error rather than silently ignored, and
    values of another JSON type than the schema's string fields declare."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
                        for name in unknown
                    }
                )
            not_strings = sorted(
                name
                for name, field in self.fields.items()
                if isinstance(field, STRING_FIELDS)
                and name in data
                and not isinstance(data[name], str)
                and not (data[name] is None and field.allow_null)
            )
            if not_strings:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Not a string.", code="invalid")] for name in not_strings}
                )
        return super().to_internal_value(data)


# --- Outputs ---------------------------------------------------------------------------


class UserOut(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ("id", "email", "name", "home_region", "date_joined")


class MemberUserOut(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ("id", "email", "name")


class OrganizationOut(serializers.ModelSerializer[Organization]):
    class Meta:
        model = Organization
        fields = ("id", "slug", "name", "home_region", "zone", "created_at")


class MembershipOut(serializers.ModelSerializer[Membership]):
    user = MemberUserOut()

    class Meta:
        model = Membership
        fields = ("id", "user", "role", "created_at")


class MyMembershipOut(serializers.ModelSerializer[Membership]):
    organization = OrganizationOut()

    class Meta:
        model = Membership
        fields = ("id", "organization", "role")


class MeOut(serializers.Serializer[Any]):
    user = UserOut()
    memberships = MyMembershipOut(many=True)


class ProjectOut(serializers.ModelSerializer[Project]):
    class Meta:
        model = Project
        fields = ("id", "name", "created_at", "updated_at")


class DocumentOut(serializers.ModelSerializer[Document]):
    project = serializers.UUIDField(source="project_id", read_only=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Document
        fields = ("id", "project", "title", "body", "created_by", "created_at", "updated_at")


class ApiTokenOut(serializers.ModelSerializer[ApiToken]):
    user = serializers.UUIDField(source="user_id", read_only=True)

    class Meta:
        model = ApiToken
        fields = ("id", "name", "prefix", "tier", "user", "created_at", "last_used_at", "revoked_at")


class NewApiTokenOut(ApiTokenOut):
    token = serializers.CharField(help_text="The secret token. Shown once; store it now.")

    class Meta(ApiTokenOut.Meta):
        fields = (*ApiTokenOut.Meta.fields, "token")  # type: ignore[assignment]


class SignupOut(serializers.Serializer[Any]):
    user = UserOut()
    organization = OrganizationOut(allow_null=True)


# --- Inputs ------------------------------------------------------------------------------


class _Password(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(write_only=True, trim_whitespace=False, max_length=128, **kwargs)


class SignupIn(InputSerializer):
    email = serializers.EmailField(max_length=254)
    password = _Password(help_text="Checked against the password policy.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    zone = serializers.CharField(
        required=False, help_text="Residency zone code (e.g. EU); give this or region."
    )
    region = serializers.CharField(
        required=False, help_text="Region code (e.g. eu-west-1); give this or zone."
    )
    organization_name = serializers.CharField(max_length=200, required=False)
    organization_slug = serializers.SlugField(
        max_length=63, required=False, help_text="Also create an organization you own."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("zone" in attrs) == ("region" in attrs):
            raise serializers.ValidationError(
                {"zone": [serializers.ErrorDetail("Give exactly one of zone or region.", code="required")]}
            )
        if "organization_name" in attrs and "organization_slug" not in attrs:
            raise serializers.ValidationError(
                {
                    "organization_slug": [
                        serializers.ErrorDetail("Required with organization_name.", "required")
                    ]
                }
            )
        return attrs


class LoginIn(InputSerializer):
    email = serializers.EmailField(max_length=254)
    password = _Password()


class TokenCreateIn(InputSerializer):
    email = serializers.EmailField(max_length=254)
    password = _Password()
    organization = serializers.SlugField(
        max_length=63, help_text="Slug of the organization the token acts in."
    )
    name = serializers.CharField(max_length=100, required=False, default="api")


class UserPatchIn(InputSerializer):
    name = serializers.CharField(max_length=200, allow_blank=True)


class OrganizationIn(InputSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=63)


class OrganizationPatchIn(InputSerializer):
    name = serializers.CharField(max_length=200)


class MemberInviteIn(InputSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)


class MemberPatchIn(InputSerializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class ProjectIn(InputSerializer):
    name = serializers.CharField(max_length=200)


class DocumentIn(InputSerializer):
    project = serializers.UUIDField()
    title = serializers.CharField(max_length=300)
    body = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class DocumentPatchIn(InputSerializer):
    project = serializers.UUIDField(required=False)
    title = serializers.CharField(max_length=300, required=False)
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


# --- Filters (query parameters) -----------------------------------------------------------


class MemberFilter(InputSerializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices, required=False)


class ProjectFilter(InputSerializer):
    name = serializers.CharField(
        required=False, allow_blank=True, help_text="Case-insensitive substring of the name (blank: any)."
    )


class DocumentFilter(InputSerializer):
    project = serializers.UUIDField(required=False)
    title = serializers.CharField(
        required=False, allow_blank=True, help_text="Case-insensitive substring of the title (blank: any)."
    )
    created_by = serializers.UUIDField(required=False)
    created_after = serializers.DateTimeField(required=False, help_text="Created at or after (ISO 8601).")
    created_before = serializers.DateTimeField(required=False, help_text="Created before (ISO 8601).")


PAGINATION_PARAMS = frozenset({"cursor", "limit"})


def parse_filters(serializer_class: type[InputSerializer], query: Any) -> dict[str, Any]:
    """Validate list filters from the query string (pagination parameters pass through)."""
    data = {key: query.get(key) for key in query if key not in PAGINATION_PARAMS}
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
