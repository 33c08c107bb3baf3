"""Admin users for tests, and the permission backend they need on the embedded database."""

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client


def staff_user(*, superuser: bool = False, staff: bool = True, perms: tuple[str, ...] = ()):
    """A new user (a unique name each time): a superuser, or staff with these codenames."""
    users = get_user_model().objects
    username = f"staff-{uuid.uuid4().hex[:10]}"
    if superuser:
        return users.create_superuser(username, f"{username}@example.com", None)
    user = users.create_user(username, is_staff=staff)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class JoinFreeModelBackend(ModelBackend):
    """ModelBackend reading the same permission rows without joining the content types.

    ModelBackend asks for `content_type__app_label`, which django-mongodb-backend projects as
    `{"django_content_type": {"app_label": 1}}`; mongoeco (the embedded test database) returns
    that literally, so every permission comes back as "1.<codename>" and a staff user who is not
    a superuser has none. Real MongoDB is fine. Only the lookup differs; the rows are real.
    """

    def _get_permissions(self, user_obj, obj, from_name):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        cache = f"_{from_name}_perm_cache"
        if not hasattr(user_obj, cache):
            perms = getattr(self, f"_get_{from_name}_permissions")(user_obj)
            app_labels = dict(ContentType.objects.values_list("pk", "app_label"))
            granted = perms.values_list("content_type", "codename")
            setattr(user_obj, cache, {f"{app_labels[ct]}.{name}" for ct, name in granted})
        return getattr(user_obj, cache)


JOIN_FREE_BACKEND = f"{__name__}.JoinFreeModelBackend"
