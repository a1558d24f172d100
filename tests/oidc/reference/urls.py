"""The Trust Anchor's federation endpoints at the root, the Relying Party under /oidc/rp/
(its entity configuration too: the view finds the entity by the URL's path).

One test-only shim: the Relying Party's login documents an `acr_values` parameter but its
view ignores it and always asks the setting OIDCFED_ACR_PROFILES (read once, at import).
Here `acr_values` is honoured by setting that module value for the request, so the test
can ask each SPID level in turn."""

from django.conf import settings
from django.urls import include, path
from spid_cie_oidc.relying_party.views import rp_begin


def begin(request, *args, **kwargs):
    acr = request.GET.get("acr_values") or settings.OIDCFED_ACR_PROFILES
    rp_begin.OIDCFED_ACR_PROFILES = acr
    return rp_begin.SpidCieOidcRpBeginView.as_view()(request, *args, **kwargs)


urlpatterns = [
    path("oidc/rp/authorization", begin),
    path("", include("spid_cie_oidc.entity.urls")),
    path("", include("spid_cie_oidc.authority.urls")),
    path("", include("spid_cie_oidc.relying_party.urls")),
    path("oidc/rp/", include("spid_cie_oidc.entity.urls")),
]
