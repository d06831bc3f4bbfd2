"""The web app's pages (docs/web.md): everything a client or an engineer does, in a browser."""

from django.contrib.auth import views as auth_views
from django.urls import path

from web.views import (
    accounts,
    conversations,
    engagements,
    engineer,
    home,
    hourly,
    invitations,
    notifications,
    requests,
    reviews,
)

app_name = "web"

urlpatterns = [
    path("signup", accounts.signup, name="signup"),
    path(
        "login",
        accounts.login_view,
        name="login",
    ),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("app/account", accounts.account, name="account"),
    path(
        "app/account/password",
        auth_views.PasswordChangeView.as_view(template_name="web/password.html", success_url="/app/account?changed=1"),
        name="password",
    ),
    path("app/", home.home, name="home"),
    path("app/requests/new", requests.request_new, name="request-new"),
    path("app/requests/<int:request_id>", requests.request_page, name="request"),
    path("app/requests/<int:request_id>/hire", requests.request_hire, name="request-hire"),
    path("app/requests/<int:request_id>/widening", requests.request_widening, name="request-widening"),
    path("app/requests/<int:request_id>/cancel", requests.request_cancel, name="request-cancel"),
    path("app/profile", engineer.profile, name="profile"),
    path("app/vetting", engineer.vetting, name="vetting"),
    path("app/payouts", engineer.payouts, name="payouts"),
    path("app/payouts/onboarding", engineer.payouts_onboarding, name="payouts-onboarding"),
    path("app/invitations", invitations.inbox, name="invitations"),
    path("app/invitations/<int:invitation_id>/<str:answer>", invitations.invitation_answer, name="invitation-answer"),
    path("app/conversations", conversations.conversation_list, name="conversations"),
    path("app/conversations/<int:conversation_id>", conversations.conversation_page, name="conversation"),
    path("app/conversations/<int:conversation_id>/send", conversations.conversation_send, name="conversation-send"),
    path("app/engagements/<int:engagement_id>", engagements.engagement_page, name="engagement"),
    path("app/engagements/<int:engagement_id>/hours", hourly.timesheets, name="timesheets"),
    path("app/engagements/<int:engagement_id>/card", hourly.card_setup, name="card-setup"),
    path("app/engagements/<int:engagement_id>/card/saved", hourly.card_saved, name="card-saved"),
    path("app/timesheets/<int:timesheet_id>/approve", hourly.timesheet_approve, name="timesheet-approve"),
    path("app/timesheets/<int:timesheet_id>/dispute", hourly.timesheet_dispute, name="timesheet-dispute"),
    path("app/timesheets/<int:timesheet_id>/pay", hourly.timesheet_pay_now, name="timesheet-pay"),
    path("app/milestones/<int:milestone_id>", engagements.milestone_back, name="milestone-back"),
    path("app/milestones/<int:milestone_id>/fund", engagements.milestone_fund, name="milestone-fund"),
    path("app/milestones/<int:milestone_id>/funded", engagements.milestone_funded, name="milestone-funded"),
    path("app/milestones/<int:milestone_id>/approve", engagements.milestone_approve, name="milestone-approve"),
    path("app/milestones/<int:milestone_id>/refund", engagements.milestone_refund, name="milestone-refund"),
    path("app/milestones/<int:milestone_id>/<str:step>", engagements.milestone_step, name="milestone-step"),
    path("app/notifications", notifications.notifications, name="notifications"),
    path("app/notifications/email", notifications.email_preferences, name="email-preferences"),
    path("app/reviews", reviews.my_reviews, name="reviews"),
    path("app/reviews/<int:round_id>", reviews.review_write, name="review-write"),
]
