"""Create the reference Trust Anchor and Relying Party (`init`, writing the Trust Anchor's
public federation JWKS to a file), then register our provider (`register-op`; the official
validator fetches and checks our entity configuration) and the Relying Party
(`register-rp`) as the Trust Anchor's descendants. Run with DJANGO_SETTINGS_MODULE=settings."""

import json
import sys

import django

django.setup()

from django.conf import settings  # noqa: E402
from spid_cie_oidc.authority.models import (  # noqa: E402
    FederationDescendant,
    FederationEntityAssignedProfile,
    FederationEntityProfile,
)
from spid_cie_oidc.entity.jwks import create_jwk, public_jwk_from_private_jwk  # noqa: E402
from spid_cie_oidc.entity.models import FederationEntityConfiguration  # noqa: E402

TA = settings.TA
RP = TA + "oidc/rp/"
# The trust mark the Trust Anchor gives public relying parties (our server requires it).
RP_TRUST_MARK = TA + "openid_relying_party/public/"


def public(jwks):
    return [dict(public_jwk_from_private_jwk(k), use=k.get("use", "sig")) for k in jwks]


def init(jwks_out):
    ta = FederationEntityConfiguration.objects.create(
        sub=TA,
        entity_type="federation_entity",
        default_exp=60,
        metadata={"federation_entity": {
            "contacts": ["ops@ta.example"],
            "federation_fetch_endpoint": TA + "fetch",
            "federation_resolve_endpoint": TA + "resolve",
            "federation_trust_mark_status_endpoint": TA + "trust_mark_status",
            "federation_list_endpoint": TA + "list",
            "homepage_uri": TA,
            "organization_name": "Trust Anchor di prova",
        }},
        constraints={"max_path_length": 1},
        is_active=True,
    )
    core = [dict(create_jwk(), use="sig"), dict(create_jwk(), use="enc")]
    FederationEntityConfiguration.objects.create(
        sub=RP,
        entity_type="openid_relying_party",
        default_exp=60,
        authority_hints=[TA],
        jwks_core=core,
        metadata={"openid_relying_party": {
            "application_type": "web",
            "client_id": RP,
            "client_registration_types": ["automatic"],
            "jwks": {"keys": public(core)},
            "client_name": "Relying Party di riferimento",
            "contacts": ["ops@rp.example"],
            "grant_types": ["authorization_code"],
            "redirect_uris": [RP + "callback"],
            "response_types": ["code"],
            "subject_type": "pairwise",
            "id_token_signed_response_alg": "RS256",
            "userinfo_signed_response_alg": "RS256",
            "userinfo_encrypted_response_alg": "RSA-OAEP",
            "userinfo_encrypted_response_enc": "A128CBC-HS256",
            "token_endpoint_auth_method": "private_key_jwt",
        }},
        is_active=True,
    )
    with open(jwks_out, "w") as f:
        json.dump({"keys": public(ta.jwks_fed)}, f)


def register(sub, name, typ, jwks):
    d = FederationDescendant(
        sub=sub, name=name, type=typ, jwks=jwks, is_active=True, status="valid")
    # Fetches the entity configuration and checks it names this Trust Anchor.
    d.full_clean()
    d.save()
    return d


def register_rp():
    """The Relying Party, with the public-RP profile: the Trust Anchor's statement about it
    then carries its trust mark and the default RP metadata policy."""
    rp = FederationEntityConfiguration.objects.get(sub=RP)
    d = register(RP, "Relying Party di riferimento", "openid_relying_party",
                 public(rp.jwks_fed))
    profile = FederationEntityProfile.objects.create(
        name="RP pubblico", profile_category="openid_relying_party",
        profile_id=RP_TRUST_MARK,
        trust_mark_template={"organization_type": "public", "id_code": {"ipa_code": "c_h501"},
                             "email": "ops@rp.example",
                             "organization_name": "Relying Party di riferimento"})
    FederationEntityAssignedProfile.objects.create(
        descendant=d, profile=profile,
        issuer=FederationEntityConfiguration.objects.get(sub=TA))


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
    elif sys.argv[1] == "register-op":
        with open(sys.argv[3]) as f:
            register(sys.argv[2], "cie-companion", "openid_provider", json.load(f)["keys"])
    else:
        register_rp()
