"""schemathesis against the dashboard's own OpenAPI document (WSGI, no network).

A live stack answers (embedded broker, simulated board, real controller), so valid
commands really reach the controller and succeed.  Requests carry a logged-in session
cookie and the CSRF token the page would send.  The checks: no server error, every
status and body as documented, and no invalid input accepted (negative data must be
refused with a 4xx).  The endless event streams are left out (nothing to validate in a
stream that never ends).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.app import create_app
from dashboard.auth import UserStore
from dashboard.openapi import openapi_document
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import from_mapping

PASSWORD = "schema test password"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    directory: Path = tmp_path_factory.mktemp("schema")
    cfg = CFG
    with LocalStack(cfg, directory) as stack:
        users = UserStore(directory / "users.toml")
        users.set_password("therapist", PASSWORD)
        app = create_app(cfg, stack.fleet, users, secret_key=b"s" * 32)
        yield app
        app.extensions["hydrotherm"].close()


@pytest.fixture(scope="module")
def credentials(live_app: Flask) -> dict[str, Any]:
    client = live_app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = client.post("/login", data={"username": "therapist", "password": PASSWORD,
                                       "csrf_token": token})
    assert resp.status_code == 302
    page = client.get("/fleet")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
    cookie = client.get_cookie("hydrotherm_session")
    assert cookie is not None
    return {"headers": {"X-CSRFToken": csrf},
            "cookies": {"hydrotherm_session": cookie.value}}


# The document is built from the same configuration the live app below uses; the test
# checks the app serves exactly this document.  (It is loaded here rather than from the
# app fixture because schemathesis's lazy fixture loader does not work with pytest 9.)
CFG = from_mapping({"plant": {"initial_water_c": 35.0},
                    "dashboard": {"command_timeout_s": 2.0}})
DOCUMENT = openapi_document(CFG, example_table=CFG.mqtt.table_id)
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path_regex=r"stream$")
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=30,
    with_security_parameters=False, deterministic=True, database="none")


def test_the_app_serves_this_document(live_app: Flask) -> None:
    assert live_app.test_client().get("/api/openapi.json").json == DOCUMENT


@schema.parametrize()
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_openapi_document(case: Any, live_app: Flask,
                                              credentials: dict[str, Any]) -> None:
    case.call_and_validate(app=live_app, headers=credentials["headers"],
                           cookies=credentials["cookies"], checks=CHECKS)
