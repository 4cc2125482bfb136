"""Datarun settings, read from the environment.

With no environment set, everything runs on one machine with embedded parts:
SQLite, Celery's filesystem transport (no broker server) and the local sandbox.
``DATARUN_ENV=production`` refuses to start without a real secret key and a
real database.
"""
import hashlib
import hmac
import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(env(name, str(default)))


def env_bool(name: str, default: bool) -> bool:
    return env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


DATARUN_ENV = env("DATARUN_ENV", "development")
PRODUCTION = DATARUN_ENV == "production"
DATARUN_HOME = Path(env("DATARUN_HOME", str(BASE_DIR / "var"))).resolve()

_DEV_SECRET = "datarun-development-only-secret-key-do-not-use-in-production"
SECRET_KEY = env("SECRET_KEY", None if PRODUCTION else _DEV_SECRET)
if PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "DATARUN_ENV=production needs SECRET_KEY set to a random string of 32+ characters."
        )
    if not env("DATABASE_URL"):
        raise ImproperlyConfigured(
            "DATARUN_ENV=production needs DATABASE_URL (e.g. postgres://user:pass@host/db)."
        )

DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if PRODUCTION else "*").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# Production runs behind a TLS proxy that sets X-Forwarded-Proto: cookies are
# sent over https only, plain http is redirected (but the health check, which
# the container asks over plain http), and browsers are told to stay on https.
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DATARUN_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DATARUN_HSTS_SECONDS", 365 * 86400)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# Every page, script, style, image and form target is the platform's own (no
# CDN, no remote images in event descriptions): the browser refuses the rest.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here (no CDN)
    "axes",  # failed-login counts and lockouts (databoard.throttling)
    "datarun",
    "databoard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "datarun.middleware.RefuseNulCharactersMiddleware",
    "datarun.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "databoard.middleware.ViewerTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out login attempt into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "databoard.middleware.viewer_time_zone",
            ],
        },
    },
]

_default_db = f"sqlite:///{DATARUN_HOME / 'db.sqlite3'}"
# A web thread keeps its database connection between requests (a new
# PostgreSQL connection costs a process fork and the authentication, several
# milliseconds on a busy machine); the health check at the start of each
# request replaces one the server closed.
DATABASES = {"default": dj_database_url.parse(
    env("DATABASE_URL", _default_db), conn_max_age=env_int("DATARUN_DB_CONN_MAX_AGE", 300),
    conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to one file: WAL lets readers run beside the
    # writer, IMMEDIATE makes writers queue instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    # Not a check: revokes the user's API token whenever the password changes.
    {"NAME": "databoard.services.accounts.RevokeApiTokenOnPasswordChange"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("DATARUN_STATIC_ROOT", str(DATARUN_HOME / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Static files come from the installed apps (no CDN); in development WhiteNoise
# serves them straight from the apps, so collectstatic is optional.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "datarun.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Datarun API",
    "DESCRIPTION": (
        "Events, teams, submissions, leaderboards, datasets and problems. "
        "Authenticate with `Authorization: Token <key>`; get a key from "
        "`POST /api/v1/auth/token/` with your username and password."),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    # Two fields called "kind": a problem's and a run's.
    "ENUM_NAME_OVERRIDES": {
        "ProblemKindEnum": "datarun.models.Problem.Kind",
        "RunKindEnum": ["run", "rerun", "reproduction"],
        "SandboxEnum": "datarun.models.ComputePool.Sandbox",
        "EnvironmentStateEnum": "datarun.models.RuntimeEnvironment.State",
        # The runs' states keep the name they had before environments had states.
        "StateEnum": "datarun.states.RunState",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DATARUN_LOG_LEVEL", "INFO")},
}

# --- Celery -----------------------------------------------------------------
_broker_dir = DATARUN_HOME / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (worker control) exchanges; kombu's default is ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The embedded transport polls its folder; keep the poll far below a
        # second so that it adds no visible latency to a fold.
        "polling_interval": 0.05,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A fold that outlives this is redelivered; the fold-run claim in the
        # database makes the redelivery a no-op while the first run is alive.
        "visibility_timeout": env_int("DATARUN_VISIBILITY_TIMEOUT", 3 * 3600),
    }
# Scores travel through the database, never through a result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "scoring"
CELERY_TASK_ROUTES = {"workers.tasks.run_fold": {"queue": "sandbox"}}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
DATARUN_REAPER_INTERVAL = env_float("DATARUN_REAPER_INTERVAL", 15.0)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-fold-runs": {
        "task": "datarun.tasks.reap_stale_fold_runs",
        "schedule": DATARUN_REAPER_INTERVAL,
    },
    "resend-lost-contributivity": {
        "task": "databoard.tasks.resend_lost_contributivity",
        "schedule": DATARUN_REAPER_INTERVAL,
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATARUN_HOME / "celerybeat-schedule")

# --- Datarun ----------------------------------------------------------------
DATARUN_STORAGE_DIR = Path(env("DATARUN_STORAGE_DIR", str(DATARUN_HOME / "storage"))).resolve()
DATARUN_WORK_DIR = Path(env("DATARUN_WORK_DIR", str(DATARUN_HOME / "work"))).resolve()
DATARUN_SANDBOX = env("DATARUN_SANDBOX", "local")
# Problems' own environments (one venv per lock hash; datarun.environments)
# and the wheel folder their builds download into and install from.
DATARUN_ENVIRONMENTS_DIR = Path(env("DATARUN_ENVIRONMENTS_DIR",
                                    str(DATARUN_HOME / "environments"))).resolve()
DATARUN_ENV_WHEELS_DIR = Path(env("DATARUN_ENV_WHEELS_DIR",
                                  str(DATARUN_ENVIRONMENTS_DIR / "wheels"))).resolve()
# Where pip resolves and downloads them: an index URL ("" PyPI, "none" no
# index) and wheel folders (comma separated), for sites without PyPI.
DATARUN_ENV_INDEX_URL = env("DATARUN_ENV_INDEX_URL", "")
DATARUN_ENV_FIND_LINKS = [p for p in env("DATARUN_ENV_FIND_LINKS", "").split(",") if p]
# A build still "building" after this long was lost (its worker died): started again.
DATARUN_ENV_BUILD_TIMEOUT_S = env_float("DATARUN_ENV_BUILD_TIMEOUT_S", 3600.0)
# Docker backend: the image fold containers run (default: the one whose tag
# matches this checkout's harness, built by deploy/runtime/build.py).
DATARUN_RUNTIME_IMAGE = env("DATARUN_RUNTIME_IMAGE", "")
# Docker backend: containers each worker slot keeps started for its next
# folds, the scientific stack imported (0: one container started per fold).
DATARUN_WARM_CONTAINERS = env_int("DATARUN_WARM_CONTAINERS", 3)
# Default per-fold limits; an event can set its own.
DATARUN_FOLD_TIME_LIMIT = env_float("DATARUN_FOLD_TIME_LIMIT", 600.0)
DATARUN_FOLD_MEMORY_LIMIT_MB = env_int("DATARUN_FOLD_MEMORY_LIMIT_MB", 2048)
DATARUN_FOLD_CPUS = env_float("DATARUN_FOLD_CPUS", 1.0)
DATARUN_LOG_LIMIT_BYTES = env_int("DATARUN_LOG_LIMIT_BYTES", 256 * 1024)
# Log lines kept per run (all folds together), streamed while folds run: the
# worker reads what each fold printed every DATARUN_LOG_POLL_INTERVAL seconds.
DATARUN_RUN_LOG_LIMIT_BYTES = env_int("DATARUN_RUN_LOG_LIMIT_BYTES", 1024 * 1024)
DATARUN_LOG_POLL_INTERVAL = env_float("DATARUN_LOG_POLL_INTERVAL", 1.0)
DATARUN_MAX_SUBMISSION_FILE_BYTES = env_int("DATARUN_MAX_SUBMISSION_FILE_BYTES", 1024 * 1024)
# The web sandbox edits files up to this size; larger ones (an external-data
# workflow's data file) and binary ones are a download link and an upload.
DATARUN_SANDBOX_EDITOR_MAX_BYTES = env_int("DATARUN_SANDBOX_EDITOR_MAX_BYTES", 100 * 1024)
# All of a submission's files together; also the most a zip archive of them
# may weigh, packed or unpacked.
DATARUN_MAX_SUBMISSION_BYTES = env_int("DATARUN_MAX_SUBMISSION_BYTES", 8 * 1024 * 1024)
# A RAMP kit uploaded as a zip (organiser pages and API): the archive, and
# what it unpacks to.
DATARUN_MAX_KIT_BYTES = env_int("DATARUN_MAX_KIT_BYTES", 200 * 1024 * 1024)
DATARUN_MAX_KIT_UNPACKED_BYTES = env_int("DATARUN_MAX_KIT_UNPACKED_BYTES", 1024 * 1024 * 1024)
# A running fold whose worker has not sent a heartbeat for this long is
# considered lost; it is re-run up to DATARUN_FOLD_MAX_ATTEMPTS times.
DATARUN_HEARTBEAT_INTERVAL = env_float("DATARUN_HEARTBEAT_INTERVAL", 5.0)
DATARUN_HEARTBEAT_TIMEOUT = env_float("DATARUN_HEARTBEAT_TIMEOUT", 60.0)
DATARUN_FOLD_MAX_ATTEMPTS = env_int("DATARUN_FOLD_MAX_ATTEMPTS", 2)
# A queued fold not claimed this long after its message was sent, whose
# message is not waiting in the broker (Redis), is sent again; on a broker
# the reaper cannot look into, after DATARUN_REDISPATCH_UNSEEN_AFTER.
DATARUN_REDISPATCH_AFTER = env_float("DATARUN_REDISPATCH_AFTER", 30.0)
DATARUN_REDISPATCH_UNSEEN_AFTER = env_float("DATARUN_REDISPATCH_UNSEEN_AFTER", 1800.0)
# A submission whose last fold's scoring took less than this is scored (mean
# +- std, bagged) by whoever recorded that fold, the web process, without a
# hop through the broker; a costlier one by the scorer (queue scoring). 0:
# always the scorer.
DATARUN_INLINE_SCORING_MAX_S = env_float("DATARUN_INLINE_SCORING_MAX_S", 0.1)

# --- Runners: whoever runs folds talks to the platform only over HTTP ---------
# The web address fold workers reach the runner API (/api/v1/runner/) at: an
# in-cluster worker or a remote runner needs this URL and a runner token, and
# neither the database nor the storage.
DATARUN_API_URL = env("DATARUN_API_URL", "http://127.0.0.1:8000").rstrip("/")
# The token of the built-in pool (the workers Celery dispatches to); by
# default derived from SECRET_KEY, so that processes sharing it agree.
DATARUN_RUNNER_TOKEN = env("DATARUN_RUNNER_TOKEN", "") or hmac.new(
    SECRET_KEY.encode(), b"datarun.runner-token", hashlib.sha256).hexdigest()
# Where a runner keeps the inputs it fetched, by content hash.
DATARUN_RUNNER_CACHE = Path(env("DATARUN_RUNNER_CACHE",
                                str(DATARUN_HOME / "runner-cache"))).resolve()
# A fold token is valid for the fold's time limit plus this (input downloads,
# reporting).
DATARUN_FOLD_TOKEN_GRACE_S = env_float("DATARUN_FOLD_TOKEN_GRACE_S", 900.0)

# Run artifacts (submission files, predictions): under DATARUN_STORAGE_DIR
# unless a bucket is set, then in any S3-compatible store (django-storages);
# credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
DATARUN_ARTIFACTS_S3_BUCKET = env("DATARUN_ARTIFACTS_S3_BUCKET", "")
if DATARUN_ARTIFACTS_S3_BUCKET:
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": DATARUN_ARTIFACTS_S3_BUCKET,
            "endpoint_url": env("DATARUN_ARTIFACTS_S3_ENDPOINT_URL",
                                env("DATARUN_S3_ENDPOINT_URL", "")) or None,
            "region_name": env("DATARUN_ARTIFACTS_S3_REGION",
                               env("DATARUN_S3_REGION", "us-east-1")),
            "location": env("DATARUN_ARTIFACTS_S3_PREFIX", ""),
            "default_acl": None,
            "querystring_auth": True,
        },
    }

# --- Web pages and e-mail ---------------------------------------------------
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/events/"
LOGOUT_REDIRECT_URL = "/events/"
# Password-reset and invitation mails: printed on the console unless an SMTP
# server is configured.
EMAIL_HOST = env("EMAIL_HOST", "")
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                    else "django.core.mail.backends.console.EmailBackend")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "datarun@localhost")
# The site's address as its users reach it, for the links in e-mails: behind
# the Compose stack's TLS proxy, https://DATARUN_DOMAIN.
DATARUN_DOMAIN = env("DATARUN_DOMAIN", "")
DATARUN_SITE_URL = env("DATARUN_SITE_URL", f"https://{DATARUN_DOMAIN}" if DATARUN_DOMAIN
                       else DATARUN_API_URL).rstrip("/")

# --- Login throttling (databoard.throttling) ----------------------------------
# django-axes counts failed logins per account and per client address (either
# count locks out), on the login page and the API's token endpoint; a success
# resets them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend, whose user comes with their profile and organiser flag.
    "databoard.backends.ViewerBackend",
]
AXES_FAILURE_LIMIT = env_int("DATARUN_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(seconds=env_float("DATARUN_LOGIN_COOLOFF_S", 900.0))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "databoard.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "databoard.throttling.client_address"
AXES_VERBOSE = False
AXES_DISABLE_ACCESS_LOG = True  # counts only: no table of every successful login
# Reverse proxies in front of the web process that append to X-Forwarded-For:
# the client address is the one the outermost of them saw.
DATARUN_PROXY_COUNT = env_int("DATARUN_PROXY_COUNT", 0)
# Password-reset mails, per client address and per e-mail (django-ratelimit,
# counted in the cache below).
DATARUN_PASSWORD_RESET_RATE = env("DATARUN_PASSWORD_RESET_RATE", "5/h")
# The cache holds those counts, so it is shared by the web processes: Redis
# when the broker is Redis, else files under DATARUN_HOME (one machine).
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CELERY_BROKER_URL, "KEY_PREFIX": "datarun-cache"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(DATARUN_HOME / "cache")}}
# Every signed-in request reads its session: from that cache, the database
# behind it (written through, so sessions outlive a flushed cache).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Contributivity is recomputed this many seconds after the last new score of
# an event (scores arriving meanwhile join the same update).
DATARUN_CONTRIBUTIVITY_DEBOUNCE_S = env_float("DATARUN_CONTRIBUTIVITY_DEBOUNCE_S", 10.0)
# Flower's address as organisers reach it (linked from the queue page; empty:
# no link).
DATARUN_FLOWER_URL = env("DATARUN_FLOWER_URL", "")

# --- Datasets ---------------------------------------------------------------
# S3 sources (s3://bucket/key): any S3-compatible store; credentials come from
# the usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables.
DATARUN_S3_ENDPOINT_URL = env("DATARUN_S3_ENDPOINT_URL", "")
DATARUN_S3_REGION = env("DATARUN_S3_REGION", "us-east-1")
# http(s) and S3 fetches give up after this many seconds without progress.
DATARUN_FETCH_TIMEOUT_S = env_float("DATARUN_FETCH_TIMEOUT_S", 60.0)
# http(s) sources are fetched from public addresses only, and from these
# networks (comma-separated, e.g. 10.0.5.0/24,127.0.0.1): loopback, private,
# link-local, multicast and reserved addresses are refused otherwise.
DATARUN_FETCH_ALLOWED_NETWORKS = [
    n.strip() for n in env("DATARUN_FETCH_ALLOWED_NETWORKS", "").split(",") if n.strip()]
for _network in DATARUN_FETCH_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATARUN_FETCH_ALLOWED_NETWORKS: {exc}") from exc
# The largest source file accepted (bytes).
DATARUN_DATASET_MAX_BYTES = env_int("DATARUN_DATASET_MAX_BYTES", 20 * 1024**3)
# Server paths a dataset may read from (comma-separated; empty: none).
DATARUN_DATASET_PATHS = [p for p in env("DATARUN_DATASET_PATHS", "").split(",") if p]
# Seconds between beat's checks for datasets whose refresh interval is due.
DATARUN_DATASET_REFRESH_CHECK_S = env_float("DATARUN_DATASET_REFRESH_CHECK_S", 300.0)
CELERY_BEAT_SCHEDULE["refresh-datasets"] = {
    "task": "datarun.tasks.refresh_datasets",
    "schedule": DATARUN_DATASET_REFRESH_CHECK_S,
}
