"""The Trust Anchor's federation endpoints at the root, the Relying Party under /oidc/rp/
(its entity configuration too: the view finds the entity by the URL's path)."""

from django.urls import include, path

urlpatterns = [
    path("", include("spid_cie_oidc.entity.urls")),
    path("", include("spid_cie_oidc.authority.urls")),
    path("", include("spid_cie_oidc.relying_party.urls")),
    path("oidc/rp/", include("spid_cie_oidc.entity.urls")),
]
