"""The users and teams API (accounts.api): admins write; managers read their team; everyone
else reads only themselves. Bad input answers 400 with field errors."""

from __future__ import annotations

import pytest

from accounts.models import Team, User

pytestmark = pytest.mark.django_db

USERS = "/api/v1/users/"
TEAMS = "/api/v1/teams/"
GOOD_PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def org(make_user):
    team_a = Team.objects.create(name="Team A")
    team_b = Team.objects.create(name="Team B")
    org = {
        "team_a": team_a,
        "team_b": team_b,
        "admin": make_user("admin"),
        "marketing": make_user("marketing"),
        "manager": make_user("manager", team_a),
        "sdr": make_user("sdr", team_a),
        "sdr_b": make_user("sdr", team_b),
    }
    team_a.manager = org["manager"]
    team_a.save()
    return org


@pytest.fixture
def admin_api(org, auth_client):
    return auth_client(org["admin"])


def usernames(response) -> set[str]:
    assert response.status_code == 200
    return {u["username"] for u in response.json()}


# --- users: admins write --------------------------------------------------------------------


def test_admin_creates_a_user(org, admin_api):
    response = admin_api.post(
        USERS,
        {
            "username": "new.seller",
            "email": "seller@acme.com",
            "password": GOOD_PASSWORD,
            "role": "sdr",
            "team": org["team_a"].pk,
            "capacity": 30,
            "weight": 2,
            "active": False,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "password" not in body
    assert (body["role"], body["team"], body["capacity"], body["weight"], body["active"]) == (
        "sdr",
        org["team_a"].pk,
        30,
        2,
        False,
    )
    user = User.objects.get(username="new.seller")
    assert user.check_password(GOOD_PASSWORD)
    assert user.routing_active is False
    assert user.is_staff is False


@pytest.mark.parametrize(("role", "staff"), [("admin", True), ("marketing", True), ("manager", False), ("sdr", False)])
def test_staff_access_follows_the_role(admin_api, role, staff):
    response = admin_api.post(USERS, {"username": f"u-{role}", "password": GOOD_PASSWORD, "role": role}, format="json")
    assert response.status_code == 201
    assert User.objects.get(username=f"u-{role}").is_staff is staff


@pytest.mark.parametrize(
    ("changes", "error_on"),
    [
        ({"role": "boss"}, "role"),
        ({"role": ""}, "role"),
        ({"team": 999999}, "team"),
        ({"team": "Team A"}, "team"),
        ({"password": "short"}, "password"),
        ({"password": "password"}, "password"),  # long enough, but too common
        ({"password": "12345678901"}, "password"),  # entirely numeric
        ({"password": ""}, "password"),
        ({"password": None}, "password"),
        ({"username": ""}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "x" * 151}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": "lots"}, "capacity"),
        ({"weight": 0}, "weight"),
        ({"active": "perhaps"}, "active"),
    ],
)
def test_creating_a_user_with_bad_input_answers_400(admin_api, changes, error_on):
    body = {"username": "candidate", "password": GOOD_PASSWORD, "role": "sdr", **changes}
    response = admin_api.post(USERS, body, format="json")
    assert response.status_code == 400
    assert error_on in response.json()
    assert not User.objects.filter(username="candidate").exists()


def test_creating_a_user_needs_a_password(admin_api):
    response = admin_api.post(USERS, {"username": "nopass", "role": "sdr"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()


def test_usernames_are_unique_whatever_the_case(org, admin_api):
    taken = org["sdr"].username.upper()
    response = admin_api.post(USERS, {"username": taken, "password": GOOD_PASSWORD}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()


def test_admin_updates_a_user(org, admin_api):
    sdr = org["sdr"]
    response = admin_api.patch(
        f"{USERS}{sdr.pk}/",
        {"role": "manager", "team": org["team_b"].pk, "capacity": 5, "password": GOOD_PASSWORD},
        format="json",
    )
    assert response.status_code == 200, response.json()
    sdr.refresh_from_db()
    assert (sdr.role, sdr.team, sdr.capacity) == ("manager", org["team_b"], 5)
    assert sdr.check_password(GOOD_PASSWORD)


@pytest.mark.parametrize(
    ("changes", "error_on"),
    [
        ({"role": "king"}, "role"),
        ({"team": 424242}, "team"),
        ({"password": "abc"}, "password"),
        ({"weight": -2}, "weight"),
    ],
)
def test_updating_a_user_with_bad_input_answers_400(org, admin_api, changes, error_on):
    sdr = org["sdr"]
    response = admin_api.patch(f"{USERS}{sdr.pk}/", changes, format="json")
    assert response.status_code == 400
    assert error_on in response.json()
    sdr.refresh_from_db()
    assert (sdr.role, sdr.team, sdr.weight) == ("sdr", org["team_a"], 1)
    assert sdr.check_password("password")


@pytest.mark.parametrize("who", ["marketing", "manager", "sdr"])
def test_only_admins_write_users(org, auth_client, who):
    client = auth_client(org[who])
    me = org[who]
    assert client.post(USERS, {"username": "intruder", "password": GOOD_PASSWORD}, format="json").status_code == 403
    assert client.patch(f"{USERS}{me.pk}/", {"role": "admin"}, format="json").status_code == 403
    assert not User.objects.filter(username="intruder").exists()
    me.refresh_from_db()
    assert me.role == who


def test_a_manager_cannot_change_a_team_member(org, auth_client):
    client = auth_client(org["manager"])
    response = client.patch(f"{USERS}{org['sdr'].pk}/", {"capacity": 999}, format="json")
    assert response.status_code == 403
    org["sdr"].refresh_from_db()
    assert org["sdr"].capacity == 50


# --- users: who reads whom ------------------------------------------------------------------


def test_an_sdr_lists_only_themselves(org, auth_client):
    client = auth_client(org["sdr"])
    assert usernames(client.get(USERS)) == {org["sdr"].username}
    assert client.get(f"{USERS}{org['sdr'].pk}/").status_code == 200
    assert client.get(f"{USERS}{org['manager'].pk}/").status_code == 404
    assert client.get(f"{USERS}{org['sdr_b'].pk}/").status_code == 404


def test_marketing_lists_only_themselves(org, auth_client):
    assert usernames(auth_client(org["marketing"]).get(USERS)) == {org["marketing"].username}


def test_a_manager_lists_their_team(org, auth_client):
    client = auth_client(org["manager"])
    assert usernames(client.get(USERS)) == {org["manager"].username, org["sdr"].username}
    assert client.get(f"{USERS}{org['sdr_b'].pk}/").status_code == 404


def test_an_admin_lists_everyone(org, admin_api):
    assert usernames(admin_api.get(USERS)) == set(User.objects.values_list("username", flat=True))


def test_passwords_never_leave_the_api(org, admin_api):
    for row in admin_api.get(USERS).json():
        assert "password" not in row


# --- teams ----------------------------------------------------------------------------------


def test_admin_creates_and_updates_a_team(org, admin_api):
    response = admin_api.post(
        TEAMS, {"name": "Team C", "manager": org["manager"].pk, "timezone": "America/New_York"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["manager"], body["timezone"]) == ("Team C", org["manager"].pk, "America/New_York")
    response = admin_api.patch(f"{TEAMS}{body['id']}/", {"timezone": "Europe/Berlin"}, format="json")
    assert response.status_code == 200
    assert Team.objects.get(pk=body["id"]).timezone == "Europe/Berlin"


def test_a_team_gets_a_default_timezone(admin_api):
    response = admin_api.post(TEAMS, {"name": "Team D"}, format="json")
    assert response.status_code == 201
    assert response.json()["timezone"] == "Europe/Paris"


@pytest.mark.parametrize(
    ("body", "error_on"),
    [
        ({"name": "Team X", "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"name": "Team X", "timezone": "CEST+2"}, "timezone"),
        ({"name": "Team X", "timezone": ""}, "timezone"),
        ({"name": "team a"}, "name"),
        ({"name": ""}, "name"),
        ({"timezone": "UTC"}, "name"),
        ({"name": "Team X", "manager": 999999}, "manager"),
        ({"name": "x" * 101}, "name"),
    ],
)
def test_creating_a_team_with_bad_input_answers_400(org, admin_api, body, error_on):
    response = admin_api.post(TEAMS, body, format="json")
    assert response.status_code == 400
    assert error_on in response.json()
    assert Team.objects.count() == 2


def test_updating_a_team_with_a_bad_timezone_answers_400(org, admin_api):
    response = admin_api.patch(f"{TEAMS}{org['team_a'].pk}/", {"timezone": "Europe/Atlantis"}, format="json")
    assert response.status_code == 400
    assert "timezone" in response.json()
    org["team_a"].refresh_from_db()
    assert org["team_a"].timezone == "Europe/Paris"


@pytest.mark.parametrize("who", ["marketing", "manager", "sdr"])
def test_only_admins_write_teams(org, auth_client, who):
    client = auth_client(org[who])
    assert client.post(TEAMS, {"name": "Rogue"}, format="json").status_code == 403
    assert client.patch(f"{TEAMS}{org['team_a'].pk}/", {"name": "Renamed"}, format="json").status_code == 403
    assert not Team.objects.filter(name__in=["Rogue", "Renamed"]).exists()


def test_unknown_team_answers_404(admin_api):
    assert admin_api.get(f"{TEAMS}999999/").status_code == 404
    assert admin_api.patch(f"{TEAMS}999999/", {"name": "x"}, format="json").status_code == 404


def team_names(response) -> set[str]:
    assert response.status_code == 200
    return {t["name"] for t in response.json()}


def test_teams_are_read_by_admins_and_marketing_whole_by_others_their_own(org, auth_client, make_user):
    """SPEC "Admin API": managers read their team (and the teams they manage); a seller reads
    their own team; a user in no team none. Another team answers 404, as if it did not exist."""
    team_c = Team.objects.create(name="Team C", manager=org["manager"])
    everyone = {"Team A", "Team B", "Team C"}
    assert team_names(auth_client(org["admin"]).get(TEAMS)) == everyone
    assert team_names(auth_client(org["marketing"]).get(TEAMS)) == everyone
    assert team_names(auth_client(org["manager"]).get(TEAMS)) == {"Team A", "Team C"}
    assert team_names(auth_client(org["sdr"]).get(TEAMS)) == {"Team A"}
    assert team_names(auth_client(make_user("sdr")).get(TEAMS)) == set()
    sdr = auth_client(org["sdr"])
    assert sdr.get(f"{TEAMS}{org['team_b'].pk}/").status_code == 404
    assert sdr.get(f"{TEAMS}{team_c.pk}/").status_code == 404
    assert auth_client(org["manager"]).get(f"{TEAMS}{team_c.pk}/").status_code == 200
