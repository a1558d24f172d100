"""Django settings of the reference software (PyPI `spid-cie-oidc`) as our federation test
runs it: one project on loopback serving its Trust Anchor (`authority`, entity id
REF_ORIGIN + "/") and its Relying Party (`relying_party`, REF_ORIGIN + "/oidc/rp/"), on a
SQLite file. Test only: fixed secret, DEBUG, TLS checks off towards our self-signed
provider. Environment: REF_ORIGIN, REF_DB, OP_ISSUER."""

import os

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
TA = os.environ["REF_ORIGIN"] + "/"
OP = os.environ["OP_ISSUER"]

SECRET_KEY = "test-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "spid_cie_oidc.accounts",
    "spid_cie_oidc.entity",
    "spid_cie_oidc.authority",
    "spid_cie_oidc.relying_party",
]
AUTH_USER_MODEL = "spid_cie_oidc_accounts.User"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [os.path.join(HERE, "templates")],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["REF_DB"]}}
STATIC_URL = "/static/"
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"spid_cie_oidc": {"handlers": ["console"], "level": "DEBUG"}},
}

# Federation.
OIDCFED_DEFAULT_TRUST_ANCHOR = TA
OIDCFED_TRUST_ANCHORS = [TA]
OIDCFED_REQUIRED_TRUST_MARKS = []
OIDCFED_IDENTITY_PROVIDERS = {"spid": {OP: TA}, "cie": {}}
# Our provider's certificate is self-signed.
HTTPC_PARAMS = {
    "connection": {"ssl": False},
    "session": {"timeout": aiohttp.ClientTimeout(total=12)},
}
RP_DEFAULT_PROVIDER_PROFILES = "spid"
# After the callback: the page that shows the user's attributes (Django's default,
# /accounts/profile/, does not exist here).
LOGIN_REDIRECT_URL = "/oidc/rp/echo_attributes"
# What the Relying Party asks when the login does not say (the package's default).
OIDCFED_ACR_PROFILES = "https://www.spid.gov.it/SpidL2"
