"""The web API against its own OpenAPI schema, by schemathesis: requests generated from the
schema (and, in its negative mode, requests that break it) get no 5xx, a documented status,
a JSON body that fits the documented schema, and a 4xx for every request that breaks it.

Not checked: ``positive_data_acceptance`` (a 2xx for every request that fits the schema),
since a well-formed request may still hold an expression that does not parse: that is a 400.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from matdiff.web.app import create_app

pytestmark = pytest.mark.web

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_the_api_keeps_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_the_schema_documents_every_endpoint_and_error() -> None:
    paths = schema.raw_schema["paths"]
    assert set(paths) == {"/api/examples", "/api/status", "/api/parse", "/api/render",
                          "/api/derive"}
    for path in ("/api/parse", "/api/render", "/api/derive"):
        responses = paths[path]["post"]["responses"]
        assert {"200", "400", "413", "500", "503", "504"} <= set(responses)
        assert "422" not in responses  # this app answers 400 with its own error body
    what = schema.raw_schema["components"]["schemas"]["DeriveRequest"]["properties"]["what"]
    assert "hvp" in what["enum"]
