"""Reviews: write one for a paid step while its window is open; read what was published about you."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from marketplace.errors import DomainError
from reviews import selectors, services
from web.forms import ReviewForm, refuse
from web.views.common import user_of


@login_required
def review_write(request: HttpRequest, round_id: int) -> HttpResponse:
    """The author's one review of the other side for this round (services.review_submit's rules)."""
    user = user_of(request)
    round_ = selectors.round_of_party(user=user, round_id=round_id)
    if round_ is None:
        raise Http404("No such review.")
    categories = list(selectors.categories_to_score(round_=round_, author=user))
    form = ReviewForm(request.POST or None, categories=categories)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.review_submit(
                author=user,
                round_id=round_.pk,
                overall=data["overall"],
                categories={name: data[f"category_{name}"] for name in categories},
                public_text=data["public_text"],
                private_note=data["private_note"],
            )
        except DomainError as error:
            if error.status == 404:
                raise Http404(error.detail) from None
            refuse(form, error)
        else:
            messages.success(request, "Thank you. Your review opens when the other side's is in, or the window ends.")
            return redirect("web:engagement", engagement_id=round_.engagement_id)
    context = {"form": form, "round": round_, "reviewing_engineer": user.pk == round_.engagement.client_id}
    return render(request, "web/review.html", context, status=422 if form.errors else 200)


@login_required
def my_reviews(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    context = {
        "reputation": selectors.reputation_of(user.pk),
        "reviews": selectors.public_reviews_of(subject_id=user.pk)[:50],
    }
    return render(request, "web/reviews.html", context)
