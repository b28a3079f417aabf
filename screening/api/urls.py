from django.urls import path

from screening.api import views

app_name = "api"

urlpatterns = [
    path("auth/login", views.LoginView.as_view(), name="login"),
    path("auth/logout", views.LogoutView.as_view(), name="logout"),
    path("auth/tokens", views.TokenListView.as_view(), name="tokens"),
    path("auth/tokens/<uuid:pk>", views.TokenRevokeView.as_view(), name="token-revoke"),
    path("me", views.MeView.as_view(), name="me"),
    path("diary-entries", views.DiaryEntryListCreate.as_view(), name="diary-list"),
    path("diary-entries/<uuid:pk>", views.DiaryEntryDetail.as_view(), name="diary-detail"),
    path("videos", views.VideoListCreate.as_view(), name="video-list"),
    path("videos/<uuid:pk>", views.VideoDetail.as_view(), name="video-detail"),
    path("questionnaires", views.QuestionnaireListCreate.as_view(), name="questionnaire-list"),
    path(
        "questionnaires/<uuid:pk>", views.QuestionnaireDetail.as_view(), name="questionnaire-detail"
    ),
    path("help", views.HelpView.as_view(), name="help"),
    path("consents", views.ConsentView.as_view(), name="consents"),
    path("consents/history", views.ConsentHistoryView.as_view(), name="consent-history"),
]
