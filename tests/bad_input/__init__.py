"""Bad input answers a clear 4xx, never a 500 (issue 14): helpers both test files use."""


def post_json(client, url, body: str):
    """POST `body` as sent: raw JSON text (escapes, huge numbers) that a dict cannot carry."""
    return client.generic("POST", url, body, content_type="application/json")


def assert_json_4xx(response, status=400):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    return response.json()
