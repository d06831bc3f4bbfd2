"""Chat: a conversation's history rendered, then followed live by web/static/web/live.js over its websocket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from conversations import selectors, services
from marketplace.errors import DomainError
from marketplace.throttling import FixedWindowThrottle
from web.forms import MessageForm
from web.views.common import refused, throttled, user_of

if TYPE_CHECKING:
    from conversations.models import Conversation

HISTORY = 50


def _member(request: HttpRequest, conversation_id: int) -> Conversation:
    conversation = selectors.conversation_for(user=user_of(request), conversation_id=conversation_id)
    if conversation is None or not conversation.is_member(user_of(request).pk):
        raise Http404("No such conversation.")
    return conversation


@login_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    conversations = selectors.conversations_of(user=user_of(request)).select_related("client", "engineer")[:100]
    return render(request, "web/conversations.html", {"conversations": conversations})


@login_required
def conversation_page(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The last HISTORY messages; the page's script syncs from the newest seq shown, so nothing falls in between."""
    conversation = _member(request, conversation_id)
    newest = list(selectors.messages_of(conversation=conversation, after=None, before=None).reverse()[:HISTORY])
    newest.reverse()
    if newest:
        services.conversation_mark_read(
            user=user_of(request), conversation_id=conversation.pk, up_to_seq=newest[-1].seq
        )
    context = {
        "conversation": conversation,
        "history": newest,
        "last_seq": newest[-1].seq if newest else 0,
        "form": MessageForm(),
        "me": user_of(request).pk,
    }
    return render(request, "web/conversation.html", context)


@require_POST
@login_required
@throttled(FixedWindowThrottle("chat_send", "RATE_LIMIT_CHAT_REST", key="user", fail_open=True))
def conversation_send(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """Without JavaScript the form posts here; with it, the page sends over the websocket instead."""
    conversation = _member(request, conversation_id)
    form = MessageForm(request.POST)
    if form.is_valid():
        try:
            services.message_send(
                sender=user_of(request),
                conversation_id=conversation.pk,
                body=form.cleaned_data["body"],
                client_msg_id=request.POST.get("client_msg_id") or None,
            )
        except DomainError as error:
            refused(request, error)
    else:
        messages.error(request, " ".join(str(error) for errors in form.errors.values() for error in errors))
    return redirect("web:conversation", conversation_id=conversation.pk)
