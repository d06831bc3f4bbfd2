"""The one NinjaAPI: every app's router, one error format, docs at /api/docs."""

from ninja import NinjaAPI

from accounts.api import router as accounts_router
from conversations.api import router as conversations_router
from hiring_requests.api import router as hiring_requests_router
from marketplace.errors import install_error_handlers
from marketplace.notifications.api import router as notifications_router
from payments.api import router as payments_router
from vetting.api import router as vetting_router

api = NinjaAPI(
    title="Vetted API",
    version="1",
    description=(
        "Raise a request, get matched with vetted engineers, chat, hire, and pay through escrow.\n\n"
        "Authenticate with `Authorization: Bearer <token>` (create one at `POST /api/auth/tokens`) "
        "or a browser session (send the `csrftoken` cookie's value as `X-CSRFToken` on writes). "
        'Every error is `{"code": "...", "detail": "..."}`; `code` is stable.'
    ),
    urls_namespace="api",
)
install_error_handlers(api)

api.add_router("/", accounts_router)
api.add_router("/vetting/", vetting_router)
api.add_router("/requests", hiring_requests_router)
api.add_router("/conversations", conversations_router)
api.add_router("/payments/", payments_router)
api.add_router("/notifications", notifications_router)
