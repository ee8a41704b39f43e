"""`manage.py createsuperuser` makes platform staff who can sign in to the admin."""

from django.core.management import call_command

from identity.models import Role, User


def test_createsuperuser_makes_platform_staff_who_can_use_the_admin(db, client, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-pw-123456")
    call_command("createsuperuser", interactive=False, username="root", email="root@example.com")
    user = User.objects.get(username="root")
    assert user.is_superuser and user.is_staff
    assert user.role == Role.PLATFORM_STAFF and user.organisation_id is None
    signed_in = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "a-long-pw-123456"}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
