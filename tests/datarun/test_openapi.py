"""The OpenAPI description of the API, and Swagger UI without the internet."""
import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db


def test_the_schema_is_valid_openapi_and_documents_token_creation():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    assert schema["info"]["title"] == "Datarun API"
    assert "/api/v1/auth/token/" in schema["paths"]
    assert "/api/v1/events/{name}/submissions/" in schema["paths"]
    assert "POST /api/v1/auth/token/" in schema["info"]["description"]


def test_the_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi: 3" in response.content


def test_swagger_ui_loads_only_files_served_by_the_project(client):
    page = client.get("/api/schema/swagger/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("swagger-ui-bundle" in a for a in assets)
    assert all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset
