"""The JSM wire format checked against Atlassian's Service Management Cloud OpenAPI description.

The product's own JSM client (``jira/service_desk.py``) drives the Jira emulator over HTTPS;
every ``/rest/servicedeskapi`` exchange is recorded, and each response, and each JSON
request body the client sent, is validated with openapi-core against the description
stored in ``tests/specs/`` (see its README for where it comes from).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from jsonschema import ValidationError
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from ticket_manager.config import load_settings
from ticket_manager.jira.client import JiraClient
from ticket_manager.jira.errors import JiraError
from ticket_manager.jira.service_desk import CustomersRefused

SPECS = Path(__file__).resolve().parents[1] / "specs"
SPEC_FILE = SPECS / "jira-service-management-cloud.openapi.json"
HOST = "https://your-domain.atlassian.net"
# Every servicedeskapi operation the product uses.
EXPECTED_OPERATIONS = {
    ("GET", "/rest/servicedeskapi/servicedesk"),
    ("GET", "/rest/servicedeskapi/servicedesk/{serviceDeskId}/requesttype"),
    ("GET", "/rest/servicedeskapi/servicedesk/{serviceDeskId}/requesttype/{requestTypeId}/field"),
    ("POST", "/rest/servicedeskapi/customer"),
    ("POST", "/rest/servicedeskapi/servicedesk/{serviceDeskId}/customer"),
    ("POST", "/rest/servicedeskapi/request"),
    ("POST", "/rest/servicedeskapi/request/{issueIdOrKey}/comment"),
    ("POST", "/rest/servicedeskapi/servicedesk/{serviceDeskId}/attachTemporaryFile"),
    ("POST", "/rest/servicedeskapi/request/{issueIdOrKey}/attachment"),
    ("POST", "/rest/servicedeskapi/request/{issueIdOrKey}/participant"),
}
# attachTemporaryFile documents its 201 answer by an example only; this is that example's shape.
TEMPORARY_ATTACHMENTS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["temporaryAttachments"],
    "properties": {
        "temporaryAttachments": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["temporaryAttachmentId", "fileName"],
                "properties": {
                    "temporaryAttachmentId": {"type": "string", "pattern": "^temp"},
                    "fileName": {"type": "string"},
                },
            },
        }
    },
}


@dataclass
class Spec:
    document: dict
    api: OpenAPI
    templates: list[tuple[re.Pattern, str]]

    def template(self, path: str) -> str | None:
        return next((t for pattern, t in self.templates if pattern.match(path)), None)

    def validator(self, schema: dict) -> OAS30Validator:
        return OAS30Validator({**schema, "components": self.document["components"]})


@pytest.fixture(scope="module")
def spec() -> Spec:
    document = json.loads(SPEC_FILE.read_text())
    document["servers"] = [{"url": HOST}]  # the stored copy names no server
    templates = []
    for template in sorted(document["paths"], key=lambda p: (p.count("{"), -len(p))):
        regex = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        templates.append((re.compile(f"^{regex}$"), template))
    api = OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))
    return Spec(document, api, templates)


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    request_body: bytes
    request_type: str
    status: int
    response_body: bytes
    response_type: str


def record(emulator) -> list[Exchange]:
    """Capture every servicedeskapi exchange the emulator serves from now on."""
    from flask import request

    exchanges: list[Exchange] = []

    @emulator.app.after_request
    def _capture(response):
        if request.path.startswith("/rest/servicedeskapi/"):
            exchanges.append(
                Exchange(
                    request.method,
                    request.path,
                    request.query_string.decode(),
                    b"" if request.mimetype == "multipart/form-data" else request.get_data(),
                    request.mimetype,
                    response.status_code,
                    response.get_data(),
                    response.mimetype,
                )
            )
        return response

    return exchanges


def validate(spec: Spec, exchange: Exchange) -> tuple[str, str]:
    """Validate one exchange's response and JSON request body; returns its operation."""
    template = spec.template(exchange.path)
    assert template is not None, f"{exchange.method} {exchange.path} is not in the description"
    operation = spec.document["paths"][template][exchange.method.lower()]
    declared = operation["responses"].get(str(exchange.status))
    assert declared is not None, f"{exchange.method} {template} answered {exchange.status}"
    args = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(exchange.query).items()}
    mock_request = MockRequest(
        HOST,
        exchange.method.lower(),
        exchange.path,
        args=args,
        data=exchange.request_body or None,
        content_type=exchange.request_type or "application/json",
    )
    body = json.loads(exchange.response_body) if exchange.response_body else None
    schema = ((declared.get("content") or {}).get("application/json") or {}).get("schema")
    if schema is not None:
        spec.api.validate_response(
            mock_request,
            MockResponse(
                exchange.response_body, status_code=exchange.status, content_type="application/json"
            ),
        )
    elif template.endswith("/attachTemporaryFile") and exchange.status == 201:
        spec.validator(TEMPORARY_ATTACHMENTS).validate(body)
    elif body is not None:
        raise AssertionError(
            f"{template} {exchange.status}: a body the description has no schema for"
        )
    if exchange.request_body and exchange.request_type == "application/json":
        spec.api.validate_request(mock_request)
    return exchange.method, template


def run_scenario(jira: JiraClient, emulator) -> None:
    """Every servicedeskapi call the product makes, through its own client."""
    desks = jira.service_desks
    desk = desks.for_project("HD")
    request_type = desks.request_type(desk, "Emailed request")
    erin = desks.customer(desk, "erin@example.com", "Erin Example")
    frank = desks.customer(desk, "frank@example.com", "Frank Friend")
    # A second call finds the customer: no creation, but the desk is asked again.
    desks.customer(desk, "erin@example.com", "Erin Example")
    created = desks.create_request(
        desk,
        request_type,
        {"summary": "Printer jammed", "description": "*From:* Erin"},
        on_behalf_of=erin,
        participants=[frank],
    )
    desks.add_participants(created.key, [desks.customer(desk, "gus@example.com", "Gus")])
    desks.add_comment(created.key, "Still broken.", public=True)
    desks.add_comment(created.key, "Checked the toner.", public=False)
    desks.attach(desk, created.key, [("log.txt", b"log", "text/plain")])
    # Errors keep JSM's ErrorResponse shape: a refused field, an unknown user, a refusal.
    with pytest.raises(JiraError):
        desks.create_request(
            desk,
            request_type,
            {"summary": "x", "labels": ["a"]},
            on_behalf_of=None,
            participants=[],
        )
    emulator.service_desks.customer_creation_allowed = False
    with pytest.raises(CustomersRefused):
        desks.customer(desk, "grace@example.com", "Grace")


def exchanges_of(deployment: str, directory: Path) -> list[Exchange]:
    """Run the scenario against a fresh emulator of ``deployment``; its exchanges."""
    from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

    with Sandbox(SandboxAccounts(jira_deployment=deployment), state_dir=directory) as sandbox:
        sandbox.jira.add_service_desk("HD", "Help desk")
        exchanges = record(sandbox.jira)
        env = {
            **sandbox.environment(),
            "JIRA_HD_BOARD": "project:HD",
            "JIRA_BOARDS": "JIRA_HD_BOARD",
        }
        run_scenario(JiraClient(load_settings(env)), sandbox.jira)
    return exchanges


@pytest.fixture(scope="module")
def cloud_exchanges(tmp_path_factory) -> list[Exchange]:
    return exchanges_of("Cloud", tmp_path_factory.mktemp("jsm-cloud"))


def test_cloud_answers_and_requests_match_the_published_description(spec, cloud_exchanges):
    # Each exchange of the product's JSM client validates against Atlassian's description.
    covered = {validate(spec, e) for e in cloud_exchanges}
    assert covered >= EXPECTED_OPERATIONS, sorted(EXPECTED_OPERATIONS - covered)
    assert {400, 403} <= {e.status for e in cloud_exchanges}


def test_data_center_answers_have_the_same_shapes(spec, tmp_path):
    # Data Center's servicedeskapi answers fit the same schemas (users by name and key).
    exchanges = exchanges_of("Server", tmp_path / "s")
    covered = {validate(spec, e) for e in exchanges}
    assert covered >= EXPECTED_OPERATIONS, sorted(EXPECTED_OPERATIONS - covered)


@pytest.mark.parametrize(
    ("pattern", "change"),
    [
        (r"/servicedesk$", lambda b: b["values"][0].update(projectKey=1)),
        (r"/field$", lambda b: b["requestTypeFields"][0].update(required="yes")),
        (r"/request$", lambda b: b.update(issueKey=None)),
        (r"/request$", lambda b: b["_links"].update(portal=b["_links"].pop("web"))),
        (r"/comment$", lambda b: b.update(public="true")),
        (r"/customer$", lambda b: b.update(mail=b.pop("emailAddress"))),
    ],
)
def test_the_validation_catches_drift(spec, cloud_exchanges, pattern, change):
    # A renamed field or a wrong type in an emulator answer fails the validation.
    good = next(
        e
        for e in cloud_exchanges
        if re.search(pattern, e.path) and e.status in (200, 201) and e.response_body
    )
    validate(spec, good)
    body = json.loads(good.response_body)
    change(body)
    broken = Exchange(**{**good.__dict__, "response_body": json.dumps(body).encode()})
    with pytest.raises((OpenAPIError, ValidationError, AssertionError)):
        validate(spec, broken)


def test_a_request_body_the_description_does_not_allow_is_caught(spec, cloud_exchanges):
    # A client body with a field RequestCreateDTO does not have fails the validation.
    create = next(e for e in cloud_exchanges if e.path.endswith("/request") and e.status == 201)
    body = json.loads(create.request_body)
    body["reporter"] = body.pop("raiseOnBehalfOf")
    broken = Exchange(**{**create.__dict__, "request_body": json.dumps(body).encode()})
    with pytest.raises(OpenAPIError):
        validate(spec, broken)
