"""Chat services and REST: ordering, idempotency, read markers, staff visibility."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations import errors, selectors, services
from conversations.models import Message, MessageKind
from hiring_requests import services as requests_services
from tests.api_calls import post_json
from tests.conftest import rolled_back
from tests.conversations.conftest import conversation_between
from tests.factories import ClientFactory, StaffFactory, vetted_engineer
from tests.hiring_requests.conftest import enable_payouts

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(rubric):
    client, engineer = ClientFactory.create(), vetted_engineer()
    return client, engineer, conversation_between(client, engineer)


def bodies(conversation) -> list[tuple[int, str]]:
    return list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", "body"))


def test_accepting_opens_the_conversation_with_a_system_message(chat):
    client, engineer, conversation = chat

    first = Message.objects.get(conversation=conversation)

    assert (conversation.client_id, conversation.engineer_id) == (client.pk, engineer.pk)
    assert (first.seq, first.kind, first.payload["event"]) == (1, MessageKind.SYSTEM, "invitation.accepted")


def test_messages_take_consecutive_seqs_in_send_order(chat):
    client, engineer, conversation = chat

    for sender, body in [(client, "hi"), (engineer, "hello"), (client, "when can you start?")]:
        services.message_send(sender=sender, conversation_id=conversation.pk, body=body, client_msg_id=None)

    assert bodies(conversation)[1:] == [(2, "hi"), (3, "hello"), (4, "when can you start?")]


def test_a_resent_client_msg_id_returns_the_stored_message(chat):
    client, _, conversation = chat

    first, created = services.message_send(
        sender=client, conversation_id=conversation.pk, body="hi", client_msg_id="c-1"
    )
    again, created_again = services.message_send(
        sender=client, conversation_id=conversation.pk, body="hi", client_msg_id="c-1"
    )

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Message.objects.filter(conversation=conversation, kind="text").count() == 1


@pytest.mark.parametrize("body", ["", "   ", "x" * 4_001])
def test_bodies_are_1_to_4000_characters(chat, body):
    client, _, conversation = chat

    with pytest.raises(errors.InvalidMessage):
        services.message_send(sender=client, conversation_id=conversation.pk, body=body, client_msg_id=None)

    assert Message.objects.filter(conversation=conversation).count() == 1


def test_an_outsider_cannot_send_and_nothing_is_stored(chat):
    _, _, conversation = chat

    with pytest.raises(errors.ConversationNotFound):
        services.message_send(
            sender=ClientFactory.create(), conversation_id=conversation.pk, body="hi", client_msg_id=None
        )

    assert Message.objects.filter(conversation=conversation).count() == 1


def test_staff_read_but_do_not_write(chat):
    _, _, conversation = chat

    with pytest.raises(errors.ReadOnlyConversation):
        services.message_send(
            sender=StaffFactory.create(), conversation_id=conversation.pk, body="hi", client_msg_id=None
        )

    assert Message.objects.filter(conversation=conversation).count() == 1


def test_unread_counts_follow_the_read_marker_and_skip_my_own(chat):
    client, engineer, conversation = chat
    for body in ("one", "two", "three"):
        services.message_send(sender=engineer, conversation_id=conversation.pk, body=body, client_msg_id=None)
    services.message_send(sender=client, conversation_id=conversation.pk, body="mine", client_msg_id=None)

    before = selectors.conversations_of(user=client).values_list("unread", flat=True).get()  # type: ignore[misc]
    services.conversation_mark_read(user=client, conversation_id=conversation.pk, up_to_seq=3)
    after = selectors.conversations_of(user=client).values("unread", "last_message__body").get()  # type: ignore[misc]
    services.conversation_mark_read(user=client, conversation_id=conversation.pk, up_to_seq=1)

    assert (before, after["unread"]) == (4, 1)  # the system message counts; my own never does
    assert after["last_message__body"] == "mine"
    assert services.conversation_mark_read(user=client, conversation_id=conversation.pk, up_to_seq=0) == 3


def test_hiring_records_an_event_in_the_conversation(chat):
    client, engineer, conversation = chat
    enable_payouts(engineer)

    requests_services.request_hire(client=client, request_id=conversation.request_id, engineer_id=engineer.pk)

    events = [m.payload.get("event") for m in Message.objects.filter(conversation=conversation, kind="system")]
    assert events == ["invitation.accepted", "hired"]


def test_an_engagement_step_posts_into_its_conversation_only_once_it_commits(chat, django_capture_on_commit_callbacks):
    _client, engineer, conversation = chat
    event = {"event": "milestone.funded", "milestone_id": 7}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.system_message_post_on_commit(
            request_id=conversation.request_id, engineer_id=engineer.pk, payload=event
        )
        # Nothing before the commit: the step may still roll back.
        assert not Message.objects.filter(conversation=conversation, payload=event).exists()
    assert callbacks  # the post, and the broadcast it queues in turn
    assert Message.objects.filter(conversation=conversation, kind="system", payload=event).count() == 1


def test_an_engagement_step_without_a_conversation_posts_nothing(chat, django_capture_on_commit_callbacks):
    _client, engineer, conversation = chat
    before = Message.objects.count()
    other = vetted_engineer()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.system_message_post_on_commit(request_id=conversation.request_id, engineer_id=other.pk, payload={})
        services.system_message_post_on_commit(
            request_id=conversation.request_id + 1, engineer_id=engineer.pk, payload={}
        )
    assert callbacks == []
    assert Message.objects.count() == before


def test_the_conversation_between_a_request_and_an_engineer_is_found_by_both(chat):
    client, engineer, conversation = chat
    assert (
        selectors.conversation_id_between(request_id=conversation.request_id, engineer_id=engineer.pk)
        == conversation.pk
    )
    assert selectors.conversation_id_between(request_id=conversation.request_id, engineer_id=client.pk) is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    total=st.integers(1, 60),
    seen_fraction=st.floats(0, 1),
    page=st.integers(1, 25),
    arriving=st.lists(st.integers(0, 3), max_size=10),
)
def test_sync_after_the_last_seen_seq_yields_every_missed_message_once_in_order(
    chat, total, seen_fraction, page, arriving
):
    """A client drops at a random point, reconnects, and pages through sync while others keep talking."""
    client, engineer, conversation = chat
    with rolled_back():
        for n in range(total):
            services.message_send(sender=engineer, conversation_id=conversation.pk, body=f"m{n}", client_msg_id=None)
        all_seqs = [seq for seq, _ in bodies(conversation)]
        last_seen = all_seqs[int(seen_fraction * (len(all_seqs) - 1))]

        received, cursor, more = [], last_seen, True
        while more:
            messages, more = selectors.messages_page(conversation=conversation, after=cursor, limit=page)
            received += [m.seq for m in messages]
            cursor = messages[-1].seq if messages else cursor
            for _ in range(arriving.pop() if arriving else 0):
                services.message_send(sender=client, conversation_id=conversation.pk, body="new", client_msg_id=None)
                more = True

        assert received == [seq for seq, _ in bodies(conversation) if seq > last_seen]


# --- REST --------------------------------------------------------------------------


def test_rest_send_is_idempotent_and_pages_by_cursor(client, chat):
    owner, _, conversation = chat
    client.force_login(owner)
    url = f"/api/conversations/{conversation.pk}/messages"

    first = post_json(client, url, {"body": "hello", "client_msg_id": "a1"})
    repeat = post_json(client, url, {"body": "hello", "client_msg_id": "a1"})
    for n in range(3):
        post_json(client, url, {"body": f"n{n}"})
    older = client.get(f"{url}?before=4&limit=2").json()
    newer = client.get(f"{url}?after=3").json()

    assert (first.status_code, repeat.status_code) == (201, 200)
    assert first.json()["id"] == repeat.json()["id"]
    assert [m["seq"] for m in older["items"]] == [3, 2]  # scrolling back reads newest first
    assert older["has_more"] is True
    oldest = client.get(f"{url}?before=4&limit=2&cursor={older['next_cursor']}").json()
    assert [m["seq"] for m in oldest["items"]] == [1]
    assert [m["body"] for m in newer["items"]] == ["n1", "n2"]


def test_rest_lists_my_conversations_with_last_message_and_unread(client, chat):
    owner, engineer, conversation = chat
    services.message_send(sender=engineer, conversation_id=conversation.pk, body="ping", client_msg_id=None)
    client.force_login(owner)

    items = client.get("/api/conversations").json()["items"]

    assert [(i["id"], i["last_message"], i["unread"]) for i in items] == [(conversation.pk, "ping", 2)]


@pytest.mark.parametrize("who", ["other_client", "other_engineer"])
def test_rest_hides_other_peoples_conversations(client, chat, who):
    _, _, conversation = chat
    outsider = ClientFactory.create() if who == "other_client" else vetted_engineer()
    client.force_login(outsider)
    url = f"/api/conversations/{conversation.pk}"

    read = client.get(f"{url}/messages")
    sent = post_json(client, f"{url}/messages", {"body": "hi"})

    assert (read.status_code, sent.status_code) == (404, 404)
    assert sent.json()["code"] == "conversation_not_found"
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert client.get("/api/conversations").json()["items"] == []


def test_staff_reading_shows_up_in_the_conversation_once_a_day(client, chat):
    owner, _, conversation = chat
    staff = StaffFactory.create(full_name="Sam Staff")
    client.force_login(staff)

    client.get(f"/api/conversations/{conversation.pk}/messages")
    client.get(f"/api/conversations/{conversation.pk}/messages")
    client.force_login(owner)
    seen = client.get(f"/api/conversations/{conversation.pk}/messages").json()["items"]

    assert [m["payload"].get("event") for m in seen] == ["invitation.accepted", "staff.viewed"]
    assert seen[1]["payload"] == {"event": "staff.viewed", "staff_id": staff.pk, "name": "Sam Staff"}


def test_the_other_member_is_notified_once_per_unread_run_not_per_message(chat):
    from marketplace.models import Notification

    client, engineer, conversation = chat

    def notified() -> int:
        return Notification.objects.filter(user=engineer, event="message.created").count()

    def send(sender, body):
        return services.message_send(sender=sender, conversation_id=conversation.pk, body=body, client_msg_id=None)[0]

    send(client, "one")
    send(client, "two")
    send(engineer, "my own reply does not end the client's run")
    send(client, "three")
    after_a_run = notified()
    services.conversation_mark_read(user=engineer, conversation_id=conversation.pk, up_to_seq=10**6)
    send(client, "four: a new run after reading")

    assert after_a_run == 1
    assert notified() == 2
    assert Notification.objects.filter(user=client, event="message.created").count() == 1  # the engineer's reply
