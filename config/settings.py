"""Vigil settings: every value comes from the environment through ``config.env``.

Profiles (``VIGIL_ENV``):
- ``local``: the embedded default for the run command: SQLite, kombu's filesystem broker, keys and
  secret in ``var/`` (created by ``manage.py bootstrap_local``), nothing else to install.
- ``test``: the test suite; PostgreSQL/Redis when ``DATABASE_URL``/``CELERY_BROKER_URL`` are set,
  otherwise SQLite and the filesystem broker.
- ``production``: refuses to start unless every secret and service URL is given.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import EnvError, env_bool, env_float, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

PROFILE = env_str("VIGIL_ENV", "test" if "pytest" in sys.modules else "local") or "local"
if PROFILE not in {"local", "test", "production"}:
    raise ImproperlyConfigured("VIGIL_ENV must be one of local, test, production")
IS_PRODUCTION = PROFILE == "production"
IS_TEST = PROFILE == "test"

VAR_DIR = Path(env_str("VIGIL_VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")

# --- secrets and hosts ---------------------------------------------------------------------------
_missing: list[str] = []


def _required_in_production(name: str, fallback: str | None) -> str:
    value = env_str(name)
    if value is not None:
        return value
    if IS_PRODUCTION or fallback is None:
        _missing.append(name)
        return ""
    return fallback


def _local_secret_key() -> str | None:
    path = VAR_DIR / "secret_key"
    return path.read_text().strip() if path.exists() else None


if IS_TEST:
    _secret_fallback: str | None = "insecure-test-only-secret-key-" + "x" * 40
else:
    _secret_fallback = _local_secret_key() or "insecure-local-key-run-manage-py-bootstrap-local"
SECRET_KEY = _required_in_production("DJANGO_SECRET_KEY", _secret_fallback)

DEBUG = env_bool("DJANGO_DEBUG", False) and not IS_PRODUCTION
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
if IS_PRODUCTION and not env_list("DJANGO_ALLOWED_HOSTS"):
    _missing.append("DJANGO_ALLOWED_HOSTS")
if IS_PRODUCTION and any(host == "*" or host.startswith(".") for host in ALLOWED_HOSTS):
    # Links (FHIR bundles, notifications) are built from the Host header when no base URL is set.
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must name the hosts in production (no wildcards)"
    )

# --- applications --------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "screening",
    "privacy",
    "risk",
    "clinician_portal",
    "clinician_portal.fhir",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "screening.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ------------------------------------------------------------------------------------
#: The embedded profile's SQLite. WAL lets the web server and the workers read while one writes.
#: Every transaction takes the write lock when it begins (BEGIN IMMEDIATE), waiting up to
#: ``timeout`` seconds for it: with SQLite's default (deferred) a transaction that read first and
#: writes later fails at once with "database is locked" when another process wrote in between
#: (its snapshot is stale, and the busy timeout does not apply), which the web server, the
#: workers and beat of ``make run`` hit while demo data was being scored.
SQLITE_OPTIONS: dict[str, Any] = {
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL;",
    "transaction_mode": "IMMEDIATE",
}
DATABASE_URL = env_str("DATABASE_URL")
if IS_PRODUCTION and not DATABASE_URL:
    _missing.append("DATABASE_URL")
if DATABASE_URL:
    _db: dict[str, Any] = dict(
        dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60) or 0)
    )
    _db["CONN_HEALTH_CHECKS"] = True
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env_str("VIGIL_SQLITE_PATH", str(VAR_DIR / "vigil.sqlite3")),
        "OPTIONS": dict(SQLITE_OPTIONS),
    }
    # The test database is a file, not memory, so that a real worker process can open it.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test-vigil.sqlite3")}
DATABASES = {"default": _db}

# --- cache (rate limits, key cache invalidation) --------------------------------------------------
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "vigil",
        }
    }
elif IS_TEST:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- auth ----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if IS_TEST:
    # Hashing strength is irrelevant to what the tests check and would dominate their time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- i18n / time ---------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static --------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not IS_PRODUCTION

# --- uploads -------------------------------------------------------------------------------------
VIGIL_VIDEO_MAX_BYTES = env_int("VIGIL_VIDEO_MAX_BYTES", 200 * 1024 * 1024) or 0
VIGIL_VIDEO_MAX_SECONDS = env_int("VIGIL_VIDEO_MAX_SECONDS", 300) or 0
VIGIL_DIARY_MAX_CHARS = env_int("VIGIL_DIARY_MAX_CHARS", 20_000) or 0
_prefix = "test-" if IS_TEST else ""  # tests never share folders with a running local service
# Uploaded bytes go straight to a private temporary directory, never to memory or the default tmp.
FILE_UPLOAD_TEMP_DIR = env_str("VIGIL_UPLOAD_TMP_DIR", str(VAR_DIR / f"{_prefix}upload-tmp"))
# Django checks that this folder exists; it must be private to the service user.
Path(str(FILE_UPLOAD_TEMP_DIR)).mkdir(parents=True, exist_ok=True, mode=0o700)
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
FILE_UPLOAD_HANDLERS = ["screening.api.uploads.CappedTemporaryFileUploadHandler"]
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# An upload's temporary file older than this was left by a killed web process (its request would
# have removed it): beat, worker start-up and the web process itself remove it (plaintext video).
# Between 600 (10 min, well past any request: gunicorn --timeout 120) and 86400 (a day).
_upload_tmp_max_age = env_int("VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS", 60 * 60)
if _upload_tmp_max_age is None or not 600 <= _upload_tmp_max_age <= 86_400:
    raise ImproperlyConfigured("VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS must be between 600 and 86400")
VIGIL_UPLOAD_TMP_MAX_AGE_SECONDS: int = _upload_tmp_max_age

# --- Vigil: keys and encrypted storage -----------------------------------------------------------
# Keyring: key-encryption keys (KEKs) that wrap each patient's data key.
VIGIL_KEYRING = env_str("VIGIL_KEYRING")  # "kid:base64key,kid2:base64key"
VIGIL_KEYRING_FILE = env_str(
    "VIGIL_KEYRING_FILE", None if (IS_PRODUCTION or IS_TEST) else str(VAR_DIR / "keys.json")
)
VIGIL_ACTIVE_KEK_ID = env_str("VIGIL_ACTIVE_KEK_ID")
if IS_PRODUCTION and not (VIGIL_KEYRING or VIGIL_KEYRING_FILE):
    _missing.append("VIGIL_KEYRING or VIGIL_KEYRING_FILE")
VIGIL_DEK_CACHE_SECONDS = env_int("VIGIL_DEK_CACHE_SECONDS", 30) or 0
VIGIL_MEDIA_ROOT = Path(env_str("VIGIL_MEDIA_ROOT", str(VAR_DIR / f"{_prefix}media")) or "")
VIGIL_WORK_DIR = Path(env_str("VIGIL_WORK_DIR", str(VAR_DIR / f"{_prefix}work")) or "")
VIGIL_MEDIA_CHUNK_BYTES = 1024 * 1024

# --- Vigil: API ----------------------------------------------------------------------------------
VIGIL_TOKEN_TTL_HOURS = env_int("VIGIL_TOKEN_TTL_HOURS", 24 * 30) or 1
VIGIL_CLIENT_CLOCK_SKEW_SECONDS = 600
VIGIL_CLIENT_BACKDATE_DAYS = 30
VIGIL_MEDIA_JOB_STUCK_SECONDS = env_int("VIGIL_MEDIA_JOB_STUCK_SECONDS", 30 * 60) or 60
VIGIL_MEDIA_JOB_MAX_ATTEMPTS = env_int("VIGIL_MEDIA_JOB_MAX_ATTEMPTS", 3) or 1

# --- Vigil: audit chain and break-glass ---------------------------------------------------------
# Anchors (the chain head's seq and hash) are also written outside the database: a JSON line per
# anchor in this file and, when set, a POST signed with HMAC-SHA256 to the webhook.
VIGIL_AUDIT_ANCHOR_FILE = Path(
    env_str("VIGIL_AUDIT_ANCHOR_FILE", str(VAR_DIR / f"{_prefix}audit-anchors.jsonl")) or ""
)
VIGIL_AUDIT_ANCHOR_WEBHOOK = env_str("VIGIL_AUDIT_ANCHOR_WEBHOOK")
VIGIL_AUDIT_ANCHOR_SECRET = env_str("VIGIL_AUDIT_ANCHOR_SECRET")
if IS_PRODUCTION and VIGIL_AUDIT_ANCHOR_WEBHOOK and not VIGIL_AUDIT_ANCHOR_SECRET:
    _missing.append("VIGIL_AUDIT_ANCHOR_SECRET")
# How long a break-glass access to a patient outside the clinician's care team lasts (minutes).
VIGIL_BREAK_GLASS_MINUTES = env_int("VIGIL_BREAK_GLASS_MINUTES", 60) or 60

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["privacy.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.VigilJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.vigil_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("VIGIL_RATE_USER", "600/min"),
        "login": env_str("VIGIL_RATE_LOGIN", "10/min"),
        "login_user": env_str("VIGIL_RATE_LOGIN_USER", "30/hour"),
        "upload": env_str("VIGIL_RATE_UPLOAD", "30/hour"),
    },
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Refused requests of callers that are not signed in (bad tokens, failed logins) are recorded one
# by one up to this many per address and window; past it one `audit.refusals_suppressed` event marks
# the flood and the rest of the window is not recorded (the responses do not change).
VIGIL_RATE_ANON_REFUSALS = env_rate("VIGIL_RATE_ANON_REFUSALS", "120/min")

SPECTACULAR_SETTINGS = {
    "TITLE": "Vigil patient API",
    "DESCRIPTION": "Diary, video, questionnaire, consent and help-button API for the Vigil app.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
}

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if IS_PRODUCTION and not CELERY_BROKER_URL:
    _missing.append("CELERY_BROKER_URL")
BROKER_DIR = VAR_DIR / f"{_prefix}broker"
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://"
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task (media: 15 min hard limit), so Redis does not redeliver a job
    # that a live worker is still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- risk: alerts and notifications -------------------------------------------------------------
# Links in notifications point here (the clinician portal); messages carry no patient text.
# Production needs the clinic's real https address: a default would send every clinician a link to
# localhost in each alert notification.
VIGIL_PORTAL_BASE_URL = _required_in_production("VIGIL_PORTAL_BASE_URL", "http://127.0.0.1:8000")
if IS_PRODUCTION and VIGIL_PORTAL_BASE_URL and not VIGIL_PORTAL_BASE_URL.startswith("https://"):
    raise ImproperlyConfigured("VIGIL_PORTAL_BASE_URL must be an https:// address in production")
VIGIL_RISK_RULE_SET_DEFAULT = env_str("VIGIL_RISK_RULE_SET_DEFAULT", "v3") or "v3"
# Signed webhook (SMS / pager gateway): HMAC-SHA256 over "timestamp.body", see docs/risk.md.
VIGIL_ALERT_WEBHOOK_URL = env_str("VIGIL_ALERT_WEBHOOK_URL")
VIGIL_ALERT_WEBHOOK_SECRET = env_str("VIGIL_ALERT_WEBHOOK_SECRET")
if VIGIL_ALERT_WEBHOOK_URL and not VIGIL_ALERT_WEBHOOK_SECRET:
    _missing.append("VIGIL_ALERT_WEBHOOK_SECRET (VIGIL_ALERT_WEBHOOK_URL is set)")
VIGIL_ALERT_WEBHOOK_TIMEOUT_SECONDS = env_int("VIGIL_ALERT_WEBHOOK_TIMEOUT_SECONDS", 10) or 10
# Outbox relay: attempts before a message is marked failed, exponential backoff, claim lease.
VIGIL_ALERT_OUTBOX_MAX_ATTEMPTS = env_int("VIGIL_ALERT_OUTBOX_MAX_ATTEMPTS", 10) or 1
VIGIL_ALERT_OUTBOX_BACKOFF_SECONDS = env_int("VIGIL_ALERT_OUTBOX_BACKOFF_SECONDS", 30) or 1
VIGIL_ALERT_OUTBOX_BACKOFF_MAX_SECONDS = (
    env_int("VIGIL_ALERT_OUTBOX_BACKOFF_MAX_SECONDS", 60 * 60) or 60
)
VIGIL_ALERT_OUTBOX_LEASE_SECONDS = env_int("VIGIL_ALERT_OUTBOX_LEASE_SECONDS", 5 * 60) or 60
# After an alert commits, ask a worker to relay at once (best effort; the beat relay delivers
# anyway). Off in tests, which call the relay themselves.
VIGIL_ALERT_RELAY_ON_COMMIT = env_bool("VIGIL_ALERT_RELAY_ON_COMMIT", not IS_TEST)
# E-mail (Django's mail backends). Local: printed to the console; production: SMTP.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "vigil@localhost") or "vigil@localhost"
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if IS_PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25) or 25
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10) or 10

# --- scoring: text, media, fusion -------------------------------------------------------------
# Devices: "auto" uses CUDA when torch sees a GPU, else the CPU; every GPU path falls back to CPU.
VIGIL_TEXT_DEVICE = env_str("VIGIL_TEXT_DEVICE", "auto") or "auto"
VIGIL_TEXT_QUANTIZED = env_bool("VIGIL_TEXT_QUANTIZED", False)
VIGIL_TEXT_BATCH_SIZE = env_int("VIGIL_TEXT_BATCH_SIZE", 32) or 32
VIGIL_MEDIA_DEVICE = env_str("VIGIL_MEDIA_DEVICE", "auto") or "auto"
VIGIL_PROSODY_BACKEND = env_str("VIGIL_PROSODY_BACKEND", "torch") or "torch"
# Where voice prosody runs: "media" (inside the video job) or "gpu" (the media worker hands the
# decoded audio, encrypted, to the gpu queue's worker, which computes a batch of videos in one
# call; docs/batching.md). "gpu" pays off on a GPU host; on CPUs the in-line default is cheaper.
VIGIL_PROSODY_QUEUE = env_str("VIGIL_PROSODY_QUEUE", "media") or "media"
VIGIL_MEDIA_FRAME_FPS = env_float("VIGIL_MEDIA_FRAME_FPS", 5.0) or 5.0
VIGIL_MEDIA_FRAME_MAX_SIDE = env_int("VIGIL_MEDIA_FRAME_MAX_SIDE", 480) or 480
VIGIL_FACE_MIN_PRESENCE = env_float("VIGIL_FACE_MIN_PRESENCE", 0.3) or 0.3
VIGIL_TRANSCRIBE = env_bool("VIGIL_TRANSCRIBE", True)
# Installed, hash-verified model files (manage.py install_models). Not under VIGIL_VAR_DIR: they
# are installed once per checkout by the bootstrap, not per run.
VIGIL_MODELS_DIR = env_str("VIGIL_MODELS_DIR", str(BASE_DIR / "var" / "models")) or str(
    BASE_DIR / "var" / "models"
)
# Workers load the models in the background when they start (the first job is then not slower).
VIGIL_WORKER_WARMUP = env_bool("VIGIL_WORKER_WARMUP", True)
VIGIL_MOOD_BASELINE_DAYS = env_int("VIGIL_MOOD_BASELINE_DAYS", 28) or 28
VIGIL_MOOD_BASELINE_MIN = env_int("VIGIL_MOOD_BASELINE_MIN", 5) or 5
VIGIL_SCORING_REAP_DAYS = env_int("VIGIL_SCORING_REAP_DAYS", 7) or 7
VIGIL_SCORING_REAP_COOLDOWN_SECONDS = env_int("VIGIL_SCORING_REAP_COOLDOWN_SECONDS", 600) or 600
# The gpu queue's worker scores text jobs in batches: up to this many jobs per scorer call, and
# it waits at most this long after a batch's first job for it to fill (docs/batching.md). Start
# that worker with --prefetch-multiplier >= VIGIL_GPU_BATCH_SIZE.
VIGIL_GPU_BATCH_SIZE = env_int("VIGIL_GPU_BATCH_SIZE", 32) or 32
VIGIL_GPU_BATCH_WAIT_SECONDS = env_float("VIGIL_GPU_BATCH_WAIT_SECONDS", 0.5) or 0.5

# --- clinician portal -----------------------------------------------------------------------------
VIGIL_PORTAL_IDLE_TIMEOUT_SECONDS = env_int("VIGIL_PORTAL_IDLE_TIMEOUT_SECONDS", 900) or 900
VIGIL_PORTAL_LOCKOUT_ATTEMPTS = env_int("VIGIL_PORTAL_LOCKOUT_ATTEMPTS", 5) or 5
VIGIL_PORTAL_LOCKOUT_SECONDS = env_int("VIGIL_PORTAL_LOCKOUT_SECONDS", 900) or 900
VIGIL_PORTAL_QUEUE_REFRESH_SECONDS = env_int("VIGIL_PORTAL_QUEUE_REFRESH_SECONDS", 15) or 15

# --- FHIR R4B API ---------------------------------------------------------------------------------
# Absolute base for links in Bundles (empty: derived from the request).
VIGIL_FHIR_BASE_URL = env_str("VIGIL_FHIR_BASE_URL", "") or ""
VIGIL_FHIR_PAGE_SIZE = env_int("VIGIL_FHIR_PAGE_SIZE", 50) or 50
VIGIL_FHIR_MAX_PAGE_SIZE = env_int("VIGIL_FHIR_MAX_PAGE_SIZE", 1000) or 1000
VIGIL_FHIR_EXPORT_DIR = env_str("VIGIL_FHIR_EXPORT_DIR", str(VAR_DIR / "fhir-export")) or str(
    VAR_DIR / "fhir-export"
)
VIGIL_FHIR_EXPORT_PAGE_SIZE = env_int("VIGIL_FHIR_EXPORT_PAGE_SIZE", 1000) or 1000
# Export jobs older than this are crypto-shredded (their data key, files and row).
VIGIL_FHIR_EXPORT_TTL_HOURS = env_int("VIGIL_FHIR_EXPORT_TTL_HOURS", 24) or 24
# Plaintext bytes per encrypted chunk of an export file.
VIGIL_FHIR_EXPORT_CHUNK_BYTES = env_int("VIGIL_FHIR_EXPORT_CHUNK_BYTES", 65536) or 65536
# Run $export in the request's process instead of a Celery task (tests, tiny installs).
VIGIL_FHIR_EXPORT_EAGER = env_bool("VIGIL_FHIR_EXPORT_EAGER", False)

# --- logging (IDs only: never patient text) ------------------------------------------------------
LOG_LEVEL = env_str("VIGIL_LOG_LEVEL", "INFO") or "INFO"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}

# --- security ------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
if IS_PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("VIGIL_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("VIGIL_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if SECRET_KEY and (
        len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 5
        or SECRET_KEY.startswith(("insecure", "django-insecure"))
    ):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random string of 50+ characters")

if _missing:
    raise ImproperlyConfigured(
        f"Vigil ({PROFILE}) refuses to start: missing {', '.join(sorted(set(_missing)))}. "
        "See .env.example."
    )

__all__ = ["EnvError"]
