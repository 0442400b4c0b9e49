"""The Jira emulator's wire format checked against Atlassian's published OpenAPI descriptions.

A scenario drives the emulator with the real ``jira`` library and plain requests; every
exchange is recorded and its response (and JSON request body) validated with openapi-core
against the Jira Cloud platform v3 and Jira Software (agile) descriptions. The documents
leave many objects open (``additionalProperties: true``); this test closes them so a renamed
or invented field fails, and checks issue ``fields`` against the schemas of each field type.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from jira import JIRA
from jsonschema import FormatChecker, ValidationError
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from ticket_manager_sandbox.jira import JiraEmulator
from ticket_manager_sandbox.server import EmulatorServer


def _spec_dir() -> Path:
    here = Path(__file__).resolve().parents[3] / "shared" / "specs" / "jira"
    if (here / "jira-cloud-platform-v3.openapi.json").exists():
        return here
    return Path(os.environ.get("JIRA_OPENAPI_DIR", str(here)))


SPEC_DIR = _spec_dir()
PLATFORM_FILE = SPEC_DIR / "jira-cloud-platform-v3.openapi.json"
AGILE_FILE = SPEC_DIR / "jira-software-cloud.openapi.json"
if not (PLATFORM_FILE.exists() and AGILE_FILE.exists()):
    if os.environ.get("CI"):
        # CI has the descriptions beside the checkout: their absence there is a broken set-up.
        raise RuntimeError(f"Atlassian OpenAPI descriptions not found in {SPEC_DIR}")
    pytest.skip(
        f"Atlassian OpenAPI descriptions not found in {SPEC_DIR} (set JIRA_OPENAPI_DIR)",
        allow_module_level=True,
    )

BOT = {"email": "bot@example.com", "api_token": "bot-token"}
AUTH = (BOT["email"], BOT["api_token"])
JIRA_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$"
)
# Every operation of the brief that the published descriptions cover.
EXPECTED_OPERATIONS = {
    ("GET", "/rest/api/3/serverInfo"),
    ("GET", "/rest/api/3/myself"),
    ("GET", "/rest/api/3/field"),
    ("GET", "/rest/api/3/project"),
    ("GET", "/rest/api/3/project/search"),
    ("GET", "/rest/api/3/project/{projectIdOrKey}"),
    ("GET", "/rest/api/3/priority"),
    ("GET", "/rest/api/3/issuetype"),
    ("GET", "/rest/api/3/status"),
    ("GET", "/rest/api/3/resolution"),
    ("POST", "/rest/api/3/issue"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}"),
    ("PUT", "/rest/api/3/issue/{issueIdOrKey}"),
    ("DELETE", "/rest/api/3/issue/{issueIdOrKey}"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}/comment"),
    ("POST", "/rest/api/3/issue/{issueIdOrKey}/comment"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}/comment/{id}"),
    ("PUT", "/rest/api/3/issue/{issueIdOrKey}/comment/{id}"),
    ("DELETE", "/rest/api/3/issue/{issueIdOrKey}/comment/{id}"),
    ("POST", "/rest/api/3/issue/{issueIdOrKey}/attachments"),
    ("GET", "/rest/api/3/attachment/{id}"),
    ("GET", "/rest/api/3/attachment/content/{id}"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}/transitions"),
    ("POST", "/rest/api/3/issue/{issueIdOrKey}/transitions"),
    ("PUT", "/rest/api/3/issue/{issueIdOrKey}/assignee"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}/watchers"),
    ("POST", "/rest/api/3/issue/{issueIdOrKey}/watchers"),
    ("DELETE", "/rest/api/3/issue/{issueIdOrKey}/watchers"),
    ("GET", "/rest/api/3/user/search"),
    ("GET", "/rest/api/3/user"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}/properties"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("PUT", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("DELETE", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("GET", "/rest/api/3/search/jql"),
    ("POST", "/rest/api/3/search/jql"),
    ("POST", "/rest/api/3/search/approximate-count"),
    ("GET", "/rest/agile/1.0/board"),
    ("GET", "/rest/agile/1.0/board/{boardId}"),
    ("GET", "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes"),
    ("GET", "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}"),
    ("GET", "/rest/api/3/attachment/meta"),
    ("GET", "/rest/api/3/mypermissions"),
    ("PUT", "/rest/api/3/comment/{commentId}/properties/{propertyKey}"),
}
# Server/Data Center has no description here; the v2 shapes it shares with Cloud are checked
# against the same schemas (its removed-on-Cloud /search against SearchResults).
EXPECTED_SERVER_OPERATIONS = {
    ("GET", "/rest/api/3/serverInfo"),
    ("POST", "/rest/api/3/issue"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}"),
    ("POST", "/rest/api/3/issue/{issueIdOrKey}/comment"),
    ("POST", "/rest/api/3/issue/{issueIdOrKey}/attachments"),
    ("GET", "/rest/api/3/issue/{issueIdOrKey}/watchers"),
    ("PUT", "/rest/api/3/issue/{issueIdOrKey}/assignee"),
    ("GET", "/rest/api/3/user/search"),
    ("GET", "/rest/api/3/search"),
}
FIELD_SCHEMAS = {
    "summary": {"type": "string", "maxLength": 255},
    "labels": {"type": "array", "items": {"type": "string", "pattern": r"^\S+$"}},
    "status": {"$ref": "#/components/schemas/StatusDetails"},
    "priority": {"$ref": "#/components/schemas/Priority"},
    "issuetype": {"$ref": "#/components/schemas/IssueTypeDetails"},
    "project": {"$ref": "#/components/schemas/ProjectDetails"},
    "reporter": {"$ref": "#/components/schemas/UserDetails"},
    "assignee": {"$ref": "#/components/schemas/UserDetails"},
    "creator": {"$ref": "#/components/schemas/UserDetails"},
    # The embedded comment page adds its own ``self`` link to PageOfComments.
    "comment": {
        "type": "object",
        "additionalProperties": False,
        "required": ["comments", "self", "maxResults", "total", "startAt"],
        "properties": {
            "comments": {"type": "array", "items": {"$ref": "#/components/schemas/Comment"}},
            "self": {"type": "string", "format": "uri"},
            "maxResults": {"type": "integer"},
            "total": {"type": "integer"},
            "startAt": {"type": "integer"},
        },
    },
    "attachment": {"type": "array", "items": {"$ref": "#/components/schemas/Attachment"}},
    "watches": {"$ref": "#/components/schemas/Watchers"},
    "resolution": {"$ref": "#/components/schemas/Resolution"},
    "votes": {"$ref": "#/components/schemas/Votes"},
    "created": {"type": "string", "format": "date-time"},
    "updated": {"type": "string", "format": "date-time"},
    "resolutiondate": {"type": "string", "format": "date-time"},
    "statuscategorychangedate": {"type": "string", "format": "date-time"},
    "lastViewed": {"type": "string", "format": "date-time"},
    "duedate": {"type": "string", "format": "date"},
    "environment": {},
    "components": {"type": "array", "items": {"$ref": "#/components/schemas/ProjectComponent"}},
    "fixVersions": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}},
    "versions": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}},
    "issuelinks": {"type": "array", "items": {"$ref": "#/components/schemas/IssueLink"}},
    "subtasks": {"type": "array"},
}
ADF_OR_WIKI = {
    "3": {"type": "object", "required": ["type", "version", "content"]},
    "2": {"type": "string"},
}


def _jira_date_time(value: object) -> bool:
    """Jira writes ``+0000`` offsets (as the description's own examples do)."""
    return not isinstance(value, str) or bool(JIRA_DATE_TIME.match(value))


def _close_open_objects(node: object) -> None:
    """Turn ``additionalProperties: true`` into false wherever properties are declared."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is True and "properties" in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_open_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_open_objects(value)


@dataclass
class Spec:
    """One loaded description: the raw (closed) document and its openapi-core object."""

    document: dict
    api: OpenAPI
    host: str
    templates: list[tuple[re.Pattern, str]]

    def template(self, path: str) -> str | None:
        for pattern, template in self.templates:
            if pattern.match(path):
                return template
        return None

    def schema_validator(self, schema: dict) -> OAS30Validator:
        root = {**schema, "components": self.document["components"]}
        checker = FormatChecker()
        checker.checks("date-time")(_jira_date_time)
        return OAS30Validator(root, format_checker=checker)


def _load(path: Path) -> Spec:
    document = json.loads(path.read_text())
    _close_open_objects(document)
    config = Config(spec_validator_cls=None, extra_format_validators={"date-time": _jira_date_time})
    templates = []
    # Literal segments win over parameters (attachment/content/{id} before attachment/{id}).
    for template in sorted(document["paths"], key=lambda p: (p.count("{"), -len(p))):
        regex = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        templates.append((re.compile(f"^{regex}$"), template))
    return Spec(
        document,
        OpenAPI.from_dict(document, config=config),
        document["servers"][0]["url"],
        templates,
    )


@pytest.fixture(scope="session")
def specs() -> dict[str, Spec]:
    """Both descriptions, loaded once per session (the platform one is 2.4 MB)."""
    return {"platform": _load(PLATFORM_FILE), "agile": _load(AGILE_FILE)}


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    request_body: bytes
    request_type: str
    authorization: str
    status: int
    response_body: bytes
    response_type: str


def record(emulator: JiraEmulator) -> list[Exchange]:
    """Capture every request/response pair the emulator serves from now on."""
    exchanges: list[Exchange] = []
    from flask import request

    @emulator.app.after_request
    def _capture(response):
        if request.path.startswith("/rest/"):
            exchanges.append(
                Exchange(
                    request.method,
                    request.path,
                    request.query_string.decode(),
                    b"" if request.mimetype == "multipart/form-data" else request.get_data(),
                    request.mimetype,
                    request.headers.get("Authorization", ""),
                    response.status_code,
                    response.get_data(),
                    response.mimetype,
                )
            )
        return response

    return exchanges


def spec_path(path: str) -> str:
    """Server and v2 paths checked against the v3 description's operations."""
    return re.sub(r"^/rest/api/(2|latest)/", "/rest/api/3/", path)


def validate(specs: dict[str, Spec], exchange: Exchange) -> tuple[str, str] | None:
    """Validate one exchange; returns the (method, template) it was checked against."""
    path = spec_path(exchange.path)
    spec = specs["agile" if path.startswith("/rest/agile/") else "platform"]
    template = spec.template(path)
    assert template is not None, f"{exchange.method} {path} is not in the description"
    operation = spec.document["paths"][template][exchange.method.lower()]
    responses = operation["responses"]
    declared = responses.get(str(exchange.status)) or responses.get("default")
    assert declared is not None, (
        f"{exchange.method} {template} answered {exchange.status}, not declared: {list(responses)}"
    )
    args = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(exchange.query).items()}
    mock_request = MockRequest(
        spec.host,
        exchange.method.lower(),
        path,
        args=args,
        headers={"Authorization": exchange.authorization},
        data=exchange.request_body or None,
        content_type=exchange.request_type or "application/json",
    )
    has_json = exchange.response_type == "application/json" and exchange.response_body
    if declared.get("content") and has_json:
        spec.api.validate_response(
            mock_request,
            MockResponse(
                exchange.response_body, status_code=exchange.status, content_type="application/json"
            ),
        )
    elif has_json and exchange.status >= 400:
        error_schema = {"$ref": "#/components/schemas/ErrorCollection"}
        spec.schema_validator(error_schema).validate(json.loads(exchange.response_body))
    if (
        exchange.request_body
        and exchange.request_type == "application/json"
        and (exchange.status < 400)
    ):
        spec.api.validate_request(_as_jira_reads_it(mock_request, exchange))
    if has_json and exchange.status < 300:
        check_issue_fields(
            spec,
            path,
            json.loads(exchange.response_body),
            version="2" if path != exchange.path else "3",
        )
    return exchange.method, template


def _as_jira_reads_it(mock_request: MockRequest, exchange: Exchange) -> MockRequest:
    """Check a body as Jira's JSON binding reads it.

    The jira library sends transition ids as numbers and ``"properties": null`` in POST
    search/jql; Jira reads the number as the documented string and null as absent.
    """
    body = json.loads(exchange.request_body)
    if not isinstance(body, dict):
        return mock_request
    body = {k: v for k, v in body.items() if v is not None}
    transition = body.get("transition")
    if isinstance(transition, dict) and isinstance(transition.get("id"), int):
        transition["id"] = str(transition["id"])
    mock_request.body = json.dumps(body).encode()
    return mock_request


def check_issue_fields(spec: Spec, path: str, body: object, version: str) -> None:
    """IssueBean leaves ``fields`` free-form; check each field against its own schema."""
    issues = []
    if re.match(r"^/rest/api/3/issue/[^/]+$", path):
        issues = [body]
    elif path.startswith("/rest/api/3/search") and isinstance(body, dict):
        issues = body.get("issues", [])
    for issue in issues:
        for name, value in issue.get("fields", {}).items():
            if name == "description":
                schema = ADF_OR_WIKI[version]
            else:
                assert name in FIELD_SCHEMAS, f"unexpected issue field {name!r}"
                schema = FIELD_SCHEMAS[name]
            if value is not None:
                spec.schema_validator(schema).validate(value)


def adf(text: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def run_cloud_scenario(base: str, emulator: JiraEmulator, ca_bundle: str) -> None:
    """Touch every covered endpoint the way the product and its library do."""
    client = JIRA(base, options={"rest_api_version": "3", "verify": ca_bundle}, basic_auth=AUTH)
    client.myself()
    client.fields()
    client.projects()
    client.project("SUP")
    client.priorities()
    client.issue_types()
    client.statuses()
    issue = client.create_issue(
        fields={
            "project": {"key": "SUP"},
            "issuetype": {"name": "Bug"},
            "summary": "Printer on fire",
            "description": adf("It smokes."),
            "labels": ["email"],
            "priority": {"name": "High"},
        }
    )
    client.add_comment(issue, adf("On it."))
    client.add_attachment(issue, io.BytesIO(b"log"), filename="log.txt")
    client.add_watcher(issue, "alice.agent@example.com")
    client.remove_watcher(issue, "alice.agent@example.com")
    client.watchers(issue)
    client.transitions(issue, expand="transitions.fields")
    client.transition_issue(issue, "31")
    client.add_issue_property(issue.key, "tm", {"messageId": "<a@x>"})
    client.search_issues('issue.property[tm].messageId = "<a@x>"')
    client.search_issues(
        "project = SUP", fields="summary,status", use_post=True, expand="renderedFields"
    )
    client.approximate_issue_count("project = SUP")
    client.search_users(query="alice")
    client.boards(name="support")
    emulator.add_comment_as(issue.key, "bob.agent@example.com", "Internal", public=False)

    session = requests.Session()
    session.auth = AUTH
    api = f"{base}/rest/api/3"
    key = issue.key
    session.get(f"{api}/project/search", params={"maxResults": 1})
    session.get(
        f"{api}/issue/{key}",
        params={"expand": "renderedFields,names,changelog", "properties": "tm"},
    )
    session.put(
        f"{api}/issue/{key}",
        params={"notifyUsers": "false"},
        json={
            "fields": {"summary": "Printer still on fire"},
            "update": {"labels": [{"add": "urgent"}, {"remove": "email"}]},
        },
    )
    comments = session.get(f"{api}/issue/{key}/comment", params={"maxResults": 10}).json()
    comment_id = comments["comments"][0]["id"]
    session.get(f"{api}/issue/{key}/comment/{comment_id}")
    session.put(f"{api}/issue/{key}/comment/{comment_id}", json={"body": adf("Edited")})
    session.delete(f"{api}/issue/{key}/comment/{comment_id}")
    attachment_id = emulator.issue(key)["attachments"][0]["id"]
    session.get(f"{api}/attachment/{attachment_id}")
    session.get(f"{api}/attachment/content/{attachment_id}")
    session.get(f"{api}/issue/{key}/transitions")
    session.get(f"{api}/resolution")
    session.get(f"{api}/issue/{key}/properties")
    session.get(f"{api}/issue/{key}/properties/tm")
    session.delete(f"{api}/issue/{key}/properties/tm")
    account_id = emulator.user("carol.customer@example.com")["accountId"]
    session.get(f"{api}/user", params={"accountId": account_id})
    session.post(
        f"{api}/search/jql", json={"jql": "project = SUP", "fields": ["*all"], "maxResults": 1}
    )
    session.get(f"{api}/issue/createmeta/SUP/issuetypes")
    session.get(f"{api}/issue/createmeta/SUP/issuetypes/10001")
    session.get(f"{api}/attachment/meta")
    session.get(f"{api}/mypermissions", params={"permissions": "ADMINISTER"})
    last_comment = session.get(f"{api}/issue/{key}/comment").json()["comments"][-1]["id"]
    session.put(f"{api}/comment/{last_comment}/properties/tm", json={"messageId": "<a@x>"})
    board_id = session.get(f"{base}/rest/agile/1.0/board").json()["values"][0]["id"]
    session.get(f"{base}/rest/agile/1.0/board/{board_id}")
    # Error answers must keep Jira's documented ErrorCollection shape too.
    session.post(
        f"{api}/issue",
        json={
            "fields": {
                "project": {"key": "SUP"},
                "issuetype": {"name": "Task"},
                "summary": "x" * 300,
            }
        },
    )
    alice_id = emulator.user("alice.agent@example.com")["accountId"]
    session.put(f"{api}/issue/{key}/assignee", json={"accountId": alice_id})
    session.put(f"{api}/issue/{key}/assignee", json={"accountId": None})
    session.put(f"{api}/issue/{key}/assignee", json={"accountId": "0" * 24})
    session.put(f"{api}/issue/{key}", json={"fields": {"customfield_10010": "x"}})
    session.post(f"{api}/issue/{key}/transitions", json={"transition": {"id": "99"}})
    session.get(f"{api}/issue/NOPE-1")
    session.get(f"{api}/search/jql", params={"jql": "nosuchfield = 1"})
    session.delete(f"{api}/issue/{key}")


def run_server_scenario(base: str, ca_bundle: str) -> None:
    """The library against Server: v2 strings and the startAt-paged /search."""
    client = JIRA(
        base,
        options={"rest_api_version": "2", "verify": ca_bundle},
        basic_auth=("ticketbot", BOT["api_token"]),
    )
    issue = client.create_issue(
        fields={
            "project": {"key": "SUP"},
            "issuetype": {"name": "Task"},
            "summary": "Help",
            "description": "h1. Hello",
        }
    )
    client.add_comment(issue, "On it.")
    client.add_attachment(issue, io.BytesIO(b"x"), filename="x.txt")
    client.add_watcher(issue, "alice.agent")
    client.watchers(issue)
    client.assign_issue(issue, "alice.agent")
    client.assign_issue(issue, None)
    client.search_issues("project = SUP")
    client.issue(issue.key)


@pytest.fixture(scope="module")
def cloud_exchanges(sandbox_ca) -> list[Exchange]:
    """The Cloud scenario's exchanges, recorded once for the module."""
    emulator = JiraEmulator("Cloud", service_account=BOT)
    exchanges = record(emulator)
    server = EmulatorServer(emulator.app, ca=sandbox_ca).start()
    try:
        run_cloud_scenario(server.base_url, emulator, str(sandbox_ca.bundle_path))
    finally:
        server.stop()
    return exchanges


def test_cloud_responses_and_requests_match_the_published_description(specs, cloud_exchanges):
    # Every Cloud exchange of the scenario validates against Atlassian's OpenAPI documents.
    covered = {validate(specs, exchange) for exchange in cloud_exchanges}
    missing = EXPECTED_OPERATIONS - covered
    assert not missing, f"operations not exercised: {sorted(missing)}"
    statuses = {(e.method, e.status) for e in cloud_exchanges}
    assert ("POST", 400) in statuses and ("GET", 404) in statuses


def test_server_v2_responses_match_the_shared_schemas(specs, serve, sandbox_ca):
    # Server's v2 answers fit the same schemas where the shapes are shared with Cloud.
    emulator = JiraEmulator("Server", service_account={**BOT, "username": "ticketbot"})
    exchanges = record(emulator)
    run_server_scenario(serve(emulator.app), str(sandbox_ca.bundle_path))
    covered = {validate(specs, exchange) for exchange in exchanges}
    missing = EXPECTED_SERVER_OPERATIONS - covered
    assert not missing, f"operations not exercised: {sorted(missing)}"


def _find(exchanges: list[Exchange], method: str, pattern: str) -> Exchange:
    return next(
        e
        for e in exchanges
        if e.method == method and re.search(pattern, e.path) and e.status < 300 and e.response_body
    )


def _mutated(exchange: Exchange, change) -> Exchange:
    body = json.loads(exchange.response_body)
    change(body)
    return Exchange(**{**exchange.__dict__, "response_body": json.dumps(body).encode()})


@pytest.mark.parametrize(
    ("method", "pattern", "change"),
    [
        (
            "GET",
            r"/comment$",
            lambda b: b["comments"][0].update(createdAt=b["comments"][0].pop("created")),
        ),
        ("GET", r"/comment$", lambda b: b.update(total=str(b["total"]))),
        ("GET", r"/serverInfo$", lambda b: b.update(versionNumbers=["1001", "0"])),
        (
            "GET",
            r"/agile/1.0/board$",
            lambda b: b["values"][0]["location"].update(
                projectId=str(b["values"][0]["location"]["projectId"])
            ),
        ),
        ("GET", r"/issue/[A-Z]+-\d+$", lambda b: b["fields"]["status"].update(category="x")),
        ("GET", r"/issue/[A-Z]+-\d+$", lambda b: b["fields"].update(customerEmail="x")),
        ("GET", r"/issue/[A-Z]+-\d+$", lambda b: b["fields"]["reporter"].update(active="yes")),
        ("GET", r"/search/jql$", lambda b: b.update(nextPageToken=1)),
        ("GET", r"/user/search$", lambda b: b[0].update(mail=b[0].pop("emailAddress"))),
        ("GET", r"/attachment/\d+$", lambda b: b.update(id=str(b["id"]))),
        ("GET", r"/watchers$", lambda b: b.update(watchCount="1")),
        ("GET", r"/transitions$", lambda b: b["transitions"][0].update(target={})),
    ],
)
def test_the_validation_catches_drift(specs, cloud_exchanges, method, pattern, change):
    # A renamed field or a wrong type in an emulator answer fails the validation.
    good = _find(cloud_exchanges, method, pattern)
    validate(specs, good)
    broken = _mutated(good, change)
    with pytest.raises((OpenAPIError, ValidationError, AssertionError)):
        validate(specs, broken)


def test_request_bodies_are_checked_too(specs, cloud_exchanges):
    # A client body the description does not allow (unknown search field) fails validation.
    search = next(
        e
        for e in cloud_exchanges
        if e.method == "POST" and e.path.endswith("/search/jql") and e.status == 200
    )
    body = json.loads(search.request_body)
    body["startAt"] = 0
    broken = Exchange(**{**search.__dict__, "request_body": json.dumps(body).encode()})
    with pytest.raises(OpenAPIError, match=r"(?i)startAt|additional"):
        validate(specs, broken)
