"""Role checks declared on fields: VIEWER < CLERK < MANAGER < ADMIN."""

from __future__ import annotations

from typing import Any, ClassVar

import strawberry
from strawberry.permission import BasePermission

from db.models import Role
from schema.errors import forbidden, unauthenticated


class RolePermission(BasePermission):
    required: ClassVar[Role] = Role.VIEWER
    message = "Not allowed"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        context = info.context
        user = context.user
        if user is None:
            raise unauthenticated(context.auth_error or "Authentication required")
        if not user.role.includes(self.required):
            raise forbidden(f"Requires the {self.required.value} role")
        return True


class IsViewer(RolePermission):
    required = Role.VIEWER


class IsClerk(RolePermission):
    required = Role.CLERK


class IsManager(RolePermission):
    required = Role.MANAGER


class IsAdmin(RolePermission):
    required = Role.ADMIN
