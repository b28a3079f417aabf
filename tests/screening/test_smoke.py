from tests.conftest import new_key, now_iso


def test_patient_creates_and_reads_a_diary_entry(client_a):
    response = client_a.post(
        "/api/v1/diary-entries",
        {"idempotency_key": new_key(), "client_timestamp": now_iso(), "text": "A calm day."},
        format="json",
    )
    assert response.status_code == 201, response.content
    entry_id = response.json()["id"]
    read = client_a.get(f"/api/v1/diary-entries/{entry_id}")
    assert read.status_code == 200
    assert read.json()["text"] == "A calm day."
