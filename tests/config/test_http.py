from __future__ import annotations


def test_health_and_security_headers(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert len(response["X-Request-ID"]) >= 8


def test_readiness_reports_the_database(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_unknown_route_uses_the_error_shape(client, db):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    body = response.json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["request_id"] == response["X-Request-ID"]


def test_a_well_formed_client_request_id_is_kept(client, db):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="app-req-12345678")
    assert response["X-Request-ID"] == "app-req-12345678"
    hostile = client.get("/healthz", HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    assert hostile["X-Request-ID"] != "<script>alert(1)</script>"


def test_api_responses_are_not_cached(client, db):
    response = client.get("/api/v1/me")
    assert response["Cache-Control"] == "no-store"
