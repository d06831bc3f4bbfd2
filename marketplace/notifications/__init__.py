"""Per-user notifications: a log in the database, pushed live on `/ws/notifications/`.

Services call `notify_user` inside their transaction; see `log` for the guarantees
and `consumer` for the websocket protocol (docs/api.md, "Notifications").
"""

from marketplace.notifications.log import notify_user, user_group

__all__ = ["notify_user", "user_group"]
