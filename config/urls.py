from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from discipline.api.views import DisciplineReviewViewSet, DisciplineRulesView, DriverDecisionViewSet
from dispatch.api.driver_views import (
    DriverMeView,
    DriverOfferViewSet,
    DriverOfflineView,
    DriverOnlineView,
    DriverPingsView,
    DriverRouteView,
    DriverSuggestionViewSet,
)
from dispatch.api.traffic_views import TrafficRecordViewSet
from dispatch.api.views import DispatchSettingsView, OrderViewSet
from fleet.api.views import DriverViewSet, HubViewSet, ZoneViewSet
from identity.api.views import ClientViewSet, DeviceTokenViewSet
from integrations.api.views import WebhookDeliveryViewSet, WebhookSubscriptionViewSet
from payouts.api.driver_views import (
    DriverBalanceView,
    DriverCashOutConfirmView,
    DriverCashOutQuoteView,
    DriverDisputesView,
    DriverEarningsView,
    DriverPayoutOnboardingView,
    DriverStatementView,
    SettledDriverOrderViewSet,
)
from payouts.api.views import InvoiceViewSet, stripe_webhook
from scorecards.api.views import (
    DriverScorecardView,
    ExcuseOutcomeView,
    ScorecardDetailView,
    ScorecardListView,
    ScorecardSettingsView,
)

router = DefaultRouter(trailing_slash=False)
router.include_root_view = False
router.register("orders", OrderViewSet, basename="order")
router.register("drivers", DriverViewSet, basename="driver")
router.register("hubs", HubViewSet, basename="hub")
router.register("zones", ZoneViewSet, basename="zone")
router.register("webhook-subscriptions", WebhookSubscriptionViewSet, basename="webhook-subscription")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("clients", ClientViewSet, basename="client")
router.register("traffic/records", TrafficRecordViewSet, basename="traffic-record")
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("discipline/reviews", DisciplineReviewViewSet, basename="discipline-review")

# The driver app's API (/api/v1/driver/): a driver acting for themself, by device token or session.
driver_router = DefaultRouter(trailing_slash=False)
driver_router.include_root_view = False
driver_router.register("devices", DeviceTokenViewSet, basename="driver-device")
driver_router.register("offers", DriverOfferViewSet, basename="driver-offer")
# Dispatch's driver orders, with the earning a delivery posted (settlement).
driver_router.register("orders", SettledDriverOrderViewSet, basename="driver-order")
driver_router.register("reposition-suggestions", DriverSuggestionViewSet, basename="driver-reposition")
# Every decision about the driver, with the discipline rule behind it and their appeals.
driver_router.register("decisions", DriverDecisionViewSet, basename="driver-decision")
driver_urls = [
    path("me", DriverMeView.as_view(), name="driver-me"),
    path("route", DriverRouteView.as_view(), name="driver-route"),
    path("online", DriverOnlineView.as_view(), name="driver-online"),
    path("offline", DriverOfflineView.as_view(), name="driver-offline"),
    path("pings", DriverPingsView.as_view(), name="driver-pings"),
    path("earnings", DriverEarningsView.as_view(), name="driver-earnings"),
    path("balance", DriverBalanceView.as_view(), name="driver-balance"),
    path("cashout/quote", DriverCashOutQuoteView.as_view(), name="driver-cashout-quote"),
    path("cashout/confirm", DriverCashOutConfirmView.as_view(), name="driver-cashout-confirm"),
    path("disputes", DriverDisputesView.as_view(), name="driver-disputes"),
    path("statement", DriverStatementView.as_view(), name="driver-statement"),
    path("payout-account/onboarding", DriverPayoutOnboardingView.as_view(), name="driver-payout-onboarding"),
    path("scorecard", DriverScorecardView.as_view(), name="driver-scorecard"),
    *driver_router.urls,
]


def healthz(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/driver/", include(driver_urls)),
    path("api/v1/onboarding/", include("onboarding.api.urls")),
    path("api/v1/dispatch-settings", DispatchSettingsView.as_view(), name="dispatch-settings"),
    path("api/v1/discipline-rules", DisciplineRulesView.as_view(), name="discipline-rules"),
    path("api/v1/scorecards", ScorecardListView.as_view(), name="scorecard-list"),
    path("api/v1/scorecards.csv", ScorecardListView.as_view(), name="scorecard-csv"),
    path("api/v1/scorecard-settings", ScorecardSettingsView.as_view(), name="scorecard-settings"),
    path("api/v1/scorecards/<uuid:driver_id>", ScorecardDetailView.as_view(), name="scorecard-detail"),
    path(
        "api/v1/delivery-outcomes/<int:outcome_id>/excuse",
        ExcuseOutcomeView.as_view(),
        name="delivery-outcome-excuse",
    ),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz),
    path("webhooks/stripe", stripe_webhook, name="stripe-webhook"),
    path("", include("dispatch.web.urls")),
    path("onboarding/", include("onboarding.web.urls")),
    path("", include("scorecards.web.urls")),
    path("", include("demo.urls")),
]
