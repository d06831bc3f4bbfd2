"""Two-way reviews: sealed until both are in or the window closes, once each, hidden by staff with a
reason, and a Bayesian rating that feeds matching without burying newcomers."""

import json
from datetime import timedelta

import pytest
import time_machine

from hiring_requests import matching
from marketplace.models import Notification
from reviews import selectors, services
from reviews.models import Reputation, Review, ReviewRound
from tests.factories import (
    ClientFactory,
    EngagementFactory,
    HiringRequestFactory,
    InvitationFactory,
    ReputationFactory,
    StaffFactory,
    vetted_engineer,
)

pytestmark = pytest.mark.django_db

FROM_CLIENT = {"quality": 5, "communication": 4, "reliability": 5, "expertise": 5}
FROM_ENGINEER = {"clarity": 4, "responsiveness": 5, "fairness": 5}


def paid_step(engineer=None) -> ReviewRound:
    """An engagement whose milestone was released (and which has ended, so it holds none of the engineer's
    hours): its round is open."""
    made = EngagementFactory.create(engineer=engineer or vetted_engineer(), status="ended")
    return services.review_round_open(engagement=made, step="milestone-1")


def write(client, round_, author, overall=5, categories=None, **fields):
    client.force_login(author)
    body = {
        "overall": overall,
        "categories": categories or (FROM_CLIENT if author.pk == round_.engagement.client_id else FROM_ENGINEER),
        "public_text": "Clear, fast, careful.",
        "private_note": "Would hire again.",
        **fields,
    }
    return client.post(f"/api/reviews/rounds/{round_.pk}", json.dumps(body), content_type="application/json")


def rounds_seen_by(client, user, engagement_id):
    client.force_login(user)
    return client.get(f"/api/reviews/engagements/{engagement_id}")


def test_a_review_is_sealed_until_the_other_side_writes_then_both_are_public(client):
    round_ = paid_step()
    engagement = round_.engagement
    stranger = ClientFactory.create()

    first = write(client, round_, engagement.client, 5)
    engineer_before = rounds_seen_by(client, engagement.engineer, engagement.pk).json()["items"][0]
    client_before = rounds_seen_by(client, engagement.client, engagement.pk).json()["items"][0]
    client.force_login(stranger)
    public_before = client.get(f"/api/reviews/users/{engagement.engineer_id}").json()
    second = write(client, round_, engagement.engineer, 4)
    engineer_after = rounds_seen_by(client, engagement.engineer, engagement.pk).json()["items"][0]
    client.force_login(stranger)
    public_after = client.get(f"/api/reviews/users/{engagement.engineer_id}").json()
    stranger_rounds = rounds_seen_by(client, stranger, engagement.pk)

    assert (first.status_code, second.status_code) == (201, 201)
    assert engineer_before["theirs"] is None
    assert engineer_before["published_at"] is None
    assert client_before["mine"]["private_note"] == "Would hire again."
    assert client_before["theirs"] is None
    assert (public_before["review_count"], public_before["reviews"]) == (0, [])
    assert engineer_after["theirs"]["overall"] == 5
    assert "private_note" not in engineer_after["theirs"]
    assert public_after["review_count"] == 1
    assert public_after["rating_bp"] == services.rating_bp(stars_total=5, count=1) == 7_916
    assert [review["public_text"] for review in public_after["reviews"]] == ["Clear, fast, careful."]
    assert "private_note" not in public_after["reviews"][0]
    assert stranger_rounds.status_code == 404
    assert Notification.objects.filter(user=engagement.engineer, event="review.published").count() == 1


def test_the_window_closing_publishes_a_lone_review_and_shuts_the_other_out(client):
    round_ = paid_step()
    engagement = round_.engagement
    write(client, round_, engagement.client, 2)

    with time_machine.travel(round_.closes_at - timedelta(seconds=1), tick=False):
        early = services.reviews_publish_due()
    with time_machine.travel(round_.closes_at, tick=False):
        published = services.reviews_publish_due()
        late = write(client, round_, engagement.engineer, 5)

    seen = rounds_seen_by(client, engagement.engineer, engagement.pk).json()["items"][0]
    assert (early, published) == (0, 1)
    assert late.status_code == 409
    assert late.json()["code"] == "review_window_closed"
    assert seen["theirs"]["overall"] == 2
    assert Review.objects.count() == 1
    assert Reputation.objects.get(user=engagement.engineer).review_count == 1


def test_only_the_parties_review_once_each_and_refusals_change_nothing(client):
    round_ = paid_step()
    engagement = round_.engagement
    write(client, round_, engagement.client, 5)

    again = write(client, round_, engagement.client, 1)
    outsider = write(client, round_, ClientFactory.create(), 1, categories=FROM_CLIENT)
    wrong_categories = write(client, round_, engagement.engineer, 4, categories=FROM_CLIENT)
    out_of_range = write(client, round_, engagement.engineer, 6)
    bad_score = write(client, round_, engagement.engineer, 4, categories={**FROM_ENGINEER, "fairness": 0})

    assert (again.status_code, again.json()["code"]) == (409, "already_reviewed")
    assert (outsider.status_code, outsider.json()["code"]) == (404, "review_round_not_found")
    assert (wrong_categories.status_code, wrong_categories.json()["code"]) == (422, "invalid_review")
    assert out_of_range.status_code == 422
    assert (bad_score.status_code, bad_score.json()["code"]) == (422, "invalid_review")
    assert list(Review.objects.values_list("overall", flat=True)) == [5]
    round_.refresh_from_db()
    assert round_.published_at is None


def test_staff_hide_a_review_with_a_reason_and_the_rating_forgets_it(client):
    round_ = paid_step()
    engagement = round_.engagement
    write(client, round_, engagement.client, 1, public_text="Rude words here.")
    write(client, round_, engagement.engineer, 5)
    review = Review.objects.get(author=engagement.client)
    staff = StaffFactory.create()

    client.force_login(engagement.engineer)
    refused = client.post(
        f"/api/reviews/staff/reviews/{review.pk}/hide", json.dumps({"reason": "mine"}), content_type="application/json"
    )
    client.force_login(staff)
    hidden = client.post(
        f"/api/reviews/staff/reviews/{review.pk}/hide",
        json.dumps({"reason": "abusive language"}),
        content_type="application/json",
    )
    public = client.get(f"/api/reviews/users/{engagement.engineer_id}").json()
    staff_view = rounds_seen_by(client, staff, engagement.pk).json()["items"][0]
    engineer_view = rounds_seen_by(client, engagement.engineer, engagement.pk).json()["items"][0]

    assert refused.status_code == 403
    assert hidden.status_code == 200
    review.refresh_from_db()
    assert (review.hidden_reason, review.hidden_by_id) == ("abusive language", staff.pk)
    assert (public["review_count"], public["reviews"], public["rating_bp"]) == (0, [], 7_500)
    assert staff_view["theirs"] is not None
    assert engineer_view["theirs"] is None


def test_the_rating_is_a_bayesian_average_that_one_review_cannot_dominate(settings):
    settings.REPUTATION_PRIOR_WEIGHT = 5

    assert services.rating_bp(stars_total=0, count=0) == 7_500  # the prior: 4 stars
    assert services.rating_bp(stars_total=1, count=1) == 6_250  # one 1-star review: 3.5 stars, not 1
    assert services.rating_bp(stars_total=5, count=1) == 7_916
    assert services.rating_bp(stars_total=500, count=100) == 9_880  # many 5-star reviews approach 5 stars


def _reviewed(engineer, stars: list[int]) -> None:
    for given in stars:
        round_ = paid_step(engineer)
        services.review_submit(
            author=round_.engagement.client,
            round_id=round_.pk,
            overall=given,
            categories=FROM_CLIENT,
            public_text="ok",
        )
        services.reviews_publish_due(now=round_.closes_at)


def test_two_equal_engineers_are_ordered_by_reputation_and_the_breakdown_says_so(rubric):
    praised, panned = vetted_engineer(), vetted_engineer()
    _reviewed(praised, [5, 5, 5])
    _reviewed(panned, [2, 2, 2])
    request = HiringRequestFactory.create()

    ranked = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert [candidate.engineer_id for candidate in ranked] == [praised.pk, panned.pk]
    assert ranked[0].breakdown["reputation"] == {"score_bp": services.rating_bp(stars_total=15, count=3)}
    assert ranked[1].breakdown["reputation"] == {"score_bp": services.rating_bp(stars_total=6, count=3)}
    assert ranked[0].breakdown["weights"]["reputation"] == 10


def test_a_newcomer_ranks_above_a_poorly_reviewed_engineer_with_the_same_fit(rubric):
    panned, newcomer = vetted_engineer(), vetted_engineer()
    _reviewed(panned, [1, 2])
    request = HiringRequestFactory.create()

    ranked = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert [candidate.engineer_id for candidate in ranked] == [newcomer.pk, panned.pk]
    assert ranked[0].breakdown["reputation"] == {"score_bp": 7_500}


def test_engineers_see_the_clients_rating_and_paid_engagements_on_each_invitation(client, rubric):
    round_ = paid_step()
    engagement = round_.engagement
    services.review_submit(
        author=engagement.engineer, round_id=round_.pk, overall=3, categories=FROM_ENGINEER, public_text="slow to pay"
    )
    services.reviews_publish_due(now=round_.closes_at)
    invited = vetted_engineer()
    InvitationFactory.create(request__client=engagement.client, request__status="matching", engineer=invited)
    client.force_login(invited)

    (seen,) = client.get("/api/requests/invitations").json()["items"]

    assert seen["client"] == {
        "rating_bp": services.rating_bp(stars_total=3, count=1),
        "review_count": 1,
        "paid_engagements": 1,
    }


def test_a_round_is_found_by_its_two_parties_only(client):
    round_ = paid_step()
    engagement = round_.engagement
    assert selectors.round_of_party(user=engagement.client, round_id=round_.pk) == round_
    assert selectors.round_of_party(user=engagement.engineer, round_id=round_.pk) == round_
    # Staff read rounds in the admin; a stranger and an unknown id find nothing.
    assert selectors.round_of_party(user=StaffFactory.create(), round_id=round_.pk) is None
    assert selectors.round_of_party(user=ClientFactory.create(), round_id=round_.pk) is None
    assert selectors.round_of_party(user=engagement.client, round_id=round_.pk + 1) is None


def test_each_side_scores_the_other_sides_categories(client):
    round_ = paid_step()
    engagement = round_.engagement
    assert selectors.categories_to_score(round_=round_, author=engagement.client) == tuple(FROM_CLIENT)
    assert selectors.categories_to_score(round_=round_, author=engagement.engineer) == tuple(FROM_ENGINEER)
    # The service refuses the other side's categories with the same rule.
    response = write(client, round_, engagement.client, categories=FROM_ENGINEER)
    assert response.status_code == 422, response.content
    assert not Review.objects.filter(round=round_).exists()


def test_an_invitation_carries_its_clients_reputation_and_the_prior_for_a_client_never_reviewed():
    from hiring_requests.selectors import invitations_of
    from reviews.selectors import prior_bp
    from tests.factories import EngineerFactory

    engineer = EngineerFactory.create()
    unknown = InvitationFactory.create(engineer=engineer)
    known = InvitationFactory.create(engineer=engineer)
    ReputationFactory.create(user=known.request.client, rating_bp=9_000, review_count=3, paid_engagements=2)

    read = invitations_of(engineer=engineer).values_list(  # type: ignore[misc]  # annotated by the selector
        "pk", "client_rating_bp", "client_review_count", "client_paid_engagements"
    )
    rows = {pk: tuple(reputation) for pk, *reputation in read}

    assert rows == {unknown.pk: (prior_bp(), 0, 0), known.pk: (9_000, 3, 2)}
