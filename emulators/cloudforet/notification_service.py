"""notification.v1 Notification: create (best effort) and a user's inbox.

As the real notification service (cloudforet-io/notification at cb8ef5a):
``create`` accepts any workspace token, apps' included, and succeeds for
unknown targets; a Domain notification is copied to every user of the domain
(a Project one to the project's members, which this emulator does not model:
it keeps the one record); ``list`` is the calling user's own inbox.
"""
from __future__ import annotations

from google.protobuf import empty_pb2
from spaceone.api.notification.v1 import notification_pb2, notification_pb2_grpc

from . import errors, query
from .auth import Claims
from .base import Backend, new_id, now_iso, query_dict, request_filters, rpc, scope_filters, to_dict, to_msg
from .store import NOTIFICATIONS

RESOURCE_TYPES = ("identity.Project", "identity.User", "identity.Domain")
_Create = notification_pb2.CreateNotificationRequest


class NotificationService(notification_pb2_grpc.NotificationServicer):
    """Records notifications; like the real server it succeeds even for unknown targets."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    @rpc("Notification.create")
    def create(self, request: notification_pb2.CreateNotificationRequest, claims: Claims) -> empty_pb2.Empty:
        if request.resource_type not in RESOURCE_TYPES:
            raise errors.invalid("resource_type", f"must be one of {list(RESOURCE_TYPES)}")
        base = {
            "resource_type": request.resource_type,
            "resource_id": request.resource_id,
            "topic": request.topic,
            "message": to_dict(request.message) if request.HasField("message") else {},
            "notification_type": _Create.NotificationType.Name(request.notification_type or _Create.INFO),
            "notification_level": _Create.NotificationLEVEL.Name(request.notification_level or _Create.ALL),
            "is_read": False,
            "domain_id": claims.domain_id,
            "workspace_id": claims.workspace_id or self.backend.config.workspace_id,
            "created_at": now_iso(),
        }
        if request.resource_type == "identity.User":
            users = [request.resource_id]
        elif request.resource_type == "identity.Domain":
            users = [u["user_id"] for u in self.backend.config.users] if request.resource_id == claims.domain_id else []
        else:
            users = [""]  # a Project: its members are not modelled
        for user_id in users:
            doc = {"notification_id": new_id("notification"), **base, "user_id": user_id}
            self.store.insert(NOTIFICATIONS, doc["notification_id"], doc)
        return empty_pb2.Empty()

    @rpc("Notification.list")
    def list(self, request: notification_pb2.NotificationQuery,
             claims: Claims) -> notification_pb2.NotificationsInfo:
        mine = {"k": "user_id", "v": claims.sub, "o": "eq"}  # the caller's own inbox
        spec = query.parse(query_dict(request), [*scope_filters(claims), mine, *request_filters(request)])
        results, total = query.run(self.store.scan(NOTIFICATIONS), spec, "notification_id")
        return notification_pb2.NotificationsInfo(
            results=[to_msg(d, notification_pb2.NotificationInfo) for d in results], total_count=total)
