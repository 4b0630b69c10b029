"""One settings module, driven by the environment (see SPEC.md "Configuration").

Nothing set → a self-contained development install: SQLite file and a filesystem Celery
broker under `var/`, so `make run` needs no server. Production sets DATABASE_URL,
CELERY_BROKER_URL, SECRET_KEY, ALLOWED_HOSTS, EMAIL_URL.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("LEADCRM_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
HTTPS = env.bool("HTTPS", default=not DEBUG)

INSTALLED_APPS = [
    "leadcrm.admin_site.AdminConfig",  # django.contrib.admin, admins only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "csp",
    "leadcrm",
    "accounts",
    "leads",
    "scoring",
    "routing",
    "nurturing",
    "capture",
    "integrations",
    "compliance",
    "enrichment",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside everything that answers, so the 503 and error pages carry the policy too.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside everything that reads the database: PostgreSQL down answers 503, not 500.
    "leadcrm.dbdown.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "leadcrm.middleware.BadInputMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a refused (locked-out) login into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "leadcrm.urls"
WSGI_APPLICATION = "leadcrm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.notifications",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'leadcrm.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web server, worker and beat share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # A kept connection that died with its server (restart, failover) is replaced at the
    # start of the next request instead of failing it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# The lockout check runs before the password is even looked at (django-axes); every
# authenticate() must pass the request (the login form and the admin login do).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names only where collectstatic ran (the Docker image); tests and `make run`
    # serve straight from the apps' static folders.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if (STATIC_ROOT / "staticfiles.json").exists()
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not (STATIC_ROOT / "staticfiles.json").exists()

# Bulk calls carry up to 10,000 leads; bigger bodies answer 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=25 * 1024 * 1024)

# --- E-mail ---------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="LeadCRM <noreply@localhost>")

# --- Security: HTTPS unless told otherwise ---------------------------------------------
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
# Preloading is a near-permanent promise for the whole domain that only its owner can make:
# opt in with HSTS_PRELOAD=true; until then the check's reminder (W021) is silenced.
SECURE_HSTS_PRELOAD = HTTPS and env.bool("HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD or not HTTPS else ["security.W021"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Content-Security-Policy (django-csp) on every answer: scripts and styles only from our own
# static files (no inline code, no eval: behaviour lives in static/js, data reaches it via
# json_script and data- attributes), nothing framed, posted or based elsewhere. The API docs
# page relaxes its own answer only (leadcrm.urls).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Login lockout (django-axes) --------------------------------------------------------
# The login page and the admin login both authenticate through Django, so both count.
# Failures count per (username, client IP) pair: locking by username alone would let anyone
# lock any colleague out by typing their name with bad passwords; locking by IP alone would
# lock a whole office behind one NAT. With the pair an attacker only locks themselves out
# of the account they are guessing, while the real user (from their own address) can still
# sign in. Sprays of one guess per user from one IP are the anon API/page throttles' job.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful login clears that pair's failures
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
# The attempts live in the database (no Redis needed, they survive restarts). The client
# is REMOTE_ADDR (django-ipware is not installed): behind a proxy that rewrites it, the pair
# becomes (username, proxy), which still locks only the guessed account.

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's token scheme, a refused token counting against the anonymous throttle.
        "leadcrm.authentication.TokenAuthentication",
        # Integrations' scoped keys (`Authorization: Api-Key ...`; integrations.scopes).
        "integrations.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "leadcrm.schema.AutoSchema",
    "EXCEPTION_HANDLER": "leadcrm.api.exception_handler",
    # NaN, 1e400, nesting 5,000 deep, NUL and lone surrogates answer 400 (leadcrm.inputs).
    # The API speaks JSON only (SPEC.md): one body type to document, validate and test; a
    # form or multipart body answers 415.
    "DEFAULT_PARSER_CLASSES": ["leadcrm.parsers.SafeJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["leadcrm.throttling.UserRateThrottle", "leadcrm.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="100000/hour"),
        "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
    },
    # Throttles tell clients apart by REMOTE_ADDR; X-Forwarded-For only counts behind this
    # many trusted proxies (else any client could pick a fresh identity on each call).
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LeadCRM API",
    "DESCRIPTION": "Leads, lifecycle, events and administration. Token auth: `Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Error answers (400/401/403/404/409/413/415/429) are documented once, for every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "leadcrm.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "leads.models.Stage",
        "TouchpointTypeEnum": "leads.models.TouchpointType",
        "PublicEventTypeEnum": "leads.models.EVENT_TYPES",
        "SegmentKindEnum": "nurturing.models.SegmentKind",
        "SegmentChangeKindEnum": "nurturing.models.SegmentChangeKind",
        "TemplateKindEnum": "nurturing.models.TemplateKind",
        "TaskKindEnum": "leads.models.TaskKind",
        "DeliveryStatusEnum": "integrations.models.DeliveryStatus",
        "SubmissionStatusEnum": "capture.models.SubmissionStatus",
        "ApiKeyScopeEnum": "integrations.models.Scope",
    },
}

# --- Cache: Redis when configured (shared throttling), local memory otherwise ----------
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_CACHE = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": REDIS_URL,
    # A down or unreachable Redis must cost milliseconds, not hang a request.
    "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
}
CACHES = {"default": REDIS_CACHE if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
REDIS_BROKER_TRANSPORT_OPTIONS = {
    # Long enough that a slow task is not re-delivered while it runs.
    "visibility_timeout": 3600,
    # A publish to a down broker fails in milliseconds (the outbox keeps the reaction):
    # no reconnect loop when opening a channel, short socket timeouts. The worker's own
    # reconnects follow broker_connection_retry / _max_retries, not these.
    "max_retries": 0,
    "socket_connect_timeout": 0.5,
    "socket_timeout": 5.0,
}
if not CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = REDIS_BROKER_TRANSPORT_OPTIONS
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_BROKER_CONNECTION_RETRY = True  # the worker and beat reconnect by themselves
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # ... for as long as the broker is away
CELERY_TASK_PUBLISH_RETRY = False  # the outbox retries, not the publisher
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {
    # Resumable jobs (leadcrm.jobs): send again the ones never sent or whose worker died.
    "leadcrm-jobs-resume": {"task": "leadcrm.tasks.jobs_resume", "schedule": 15.0},
    # The outbox: pending reactions go out (a stale tick is dropped, the next one follows).
    "outbox-relay": {"task": "leadcrm.tasks.outbox_relay", "schedule": 5.0, "options": {"expires": 10}},
    "outbox-prune": {"task": "leadcrm.tasks.outbox_prune", "schedule": crontab(hour=4, minute=0)},
    # Routing: what is due (SLA clocks, partner deadlines) lives in the database; these find it.
    "routing-sla-check": {"task": "routing.tasks.sla_check", "schedule": 60.0},
    "routing-partner-offers-expire": {"task": "routing.tasks.partner_offers_expire", "schedule": 120.0},
    # The dashboard's aggregate tables (whole-base dashboards read them; leads.rollups).
    "leads-dashboard-rollup": {"task": "leads.tasks.dashboard_rollup_refresh", "schedule": 300.0},
    # Engagement decays without events: bring the scores down every night.
    "scoring-decay-nightly": {"task": "scoring.tasks.scores_decay", "schedule": crontab(hour=2, minute=15)},
    # Segments with a time window ("visited in the last 7 days") lose leads with no event.
    "nurturing-segments-windows": {"task": "nurturing.tasks.segments_windows_refresh", "schedule": crontab(minute=20)},
    # E-mails whose retry time has come (a failed send waits in the database, not a countdown).
    "nurturing-messages-retry": {
        "task": "nurturing.tasks.messages_retry_due",
        "schedule": 30.0,
        "options": {"expires": 60},
    },
    # Sequences: the due enrollments (next_run_at) run; a stale tick is dropped, the next follows.
    "nurturing-sequences-tick": {
        "task": "nurturing.tasks.sequences_tick",
        "schedule": 30.0,
        "options": {"expires": 60},
    },
    # Workflows on time (inactive N days, a date property): due leads found set-based, each
    # run once per lead and period (the run key holds the date).
    "nurturing-workflows-timed": {"task": "nurturing.tasks.workflows_timed", "schedule": crontab(minute=35)},
    # Webhooks: deliveries whose (re)try time has come (next_attempt_at in the database).
    "integrations-webhooks-send": {
        "task": "integrations.tasks.deliveries_send_due",
        "schedule": 5.0,
        "options": {"expires": 10},
    },
    "scoring-predictive-retrain-weekly": {
        "task": "scoring.tasks.predictive_train",
        "schedule": crontab(hour=3, minute=30, day_of_week=0),
    },
    # GDPR retention (off unless LEADCRM_RETENTION_INACTIVE_MONTHS is set): erased in chunks.
    "compliance-retention-purge": {"task": "compliance.tasks.retention_purge", "schedule": crontab(hour=3, minute=45)},
}

# --- Domain settings --------------------------------------------------------------------
# E-mail: the public address in links (tracking, unsubscribe), the footer's postal address
# (required in marketing e-mail), the mailto of List-Unsubscribe, and one frequency cap for
# every marketing e-mail ("3/7": at most 3 per lead in 7 days).
LEADCRM_BASE_URL = env.str("LEADCRM_BASE_URL", default="http://127.0.0.1:8000")
LEADCRM_POSTAL_ADDRESS = env.str("LEADCRM_POSTAL_ADDRESS", default="LeadCRM, 1 rue de l'Exemple, 75001 Paris, France")
LEADCRM_UNSUBSCRIBE_MAILTO = env.str("LEADCRM_UNSUBSCRIBE_MAILTO", default="unsubscribe@localhost")
LEADCRM_EMAIL_FREQUENCY_CAP = env.str("LEADCRM_EMAIL_FREQUENCY_CAP", default="3/7")
# Messages per second each provider accepts, shared by every worker: "smtp=50,amazon_ses=14"
# (nurturing.sending_rate; checked at start-up). Unset: not paced.
LEADCRM_EMAIL_RATE_LIMITS = env.str("LEADCRM_EMAIL_RATE_LIMITS", default="")
# The providers' webhooks (bounces, complaints, replies: /webhooks/email/<provider>/...) take
# HTTP basic auth "user:password" = ANYMAIL_WEBHOOK_SECRET; without it they refuse every call.
ANYMAIL = {"WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="")}
# Webhook targets on loopback, private or link-local addresses are refused unless this is on
# (SSRF; integrations.targets). Tests and a loopback bench turn it on.
LEADCRM_WEBHOOK_ALLOW_PRIVATE = env.bool("LEADCRM_WEBHOOK_ALLOW_PRIVATE", default=False)
# Until a scoring rule set defines its own, the MQL threshold comes from here.
LEADCRM_MQL_THRESHOLD = env.int("LEADCRM_MQL_THRESHOLD", default=50)
LEADCRM_BULK_MAX_ROWS = 10_000
# A CSV upload larger than this is refused before it is read whole (leadcrm.uploads).
LEADCRM_UPLOAD_MAX_BYTES = env.int("LEADCRM_UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
FILE_UPLOAD_HANDLERS = [
    "leadcrm.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# One lead's JSON body (PATCH too): its fields and 16 KB of custom fields, escapes included.
# Bulk and events bodies are bounded by DATA_UPLOAD_MAX_MEMORY_SIZE.
LEADCRM_LEAD_BODY_MAX_BYTES = 256 * 1024
# An outbox row sent to the broker and not confirmed by a worker within this many seconds
# is sent again (its message lost with a Redis restarted without persistence, or with a
# worker killed mid-task); the wait doubles per delivery (leadcrm.outbox).
LEADCRM_OUTBOX_CONFIRM_SECONDS = env.int("LEADCRM_OUTBOX_CONFIRM_SECONDS", default=300)
# A resumable job whose heartbeat is older than this is taken over (its worker presumed dead).
LEADCRM_JOB_STALE_SECONDS = env.int("LEADCRM_JOB_STALE_SECONDS", default=45)
# The dashboard reads its aggregate tables while their last rebuild is younger than this.
LEADCRM_DASHBOARD_ROLLUP_MAX_AGE = env.int("LEADCRM_DASHBOARD_ROLLUP_MAX_AGE", default=900)
# Public form capture (capture/): throttles per client IP and per form's site key (429),
# switchable off (the bench); a submission sooner than this after the form was shown is held.
LEADCRM_CAPTURE_THROTTLE = env.bool("LEADCRM_CAPTURE_THROTTLE", default=True)
LEADCRM_CAPTURE_RATE_IP = env.str("LEADCRM_CAPTURE_RATE_IP", default="30/minute")
LEADCRM_CAPTURE_RATE_SITE_KEY = env.str("LEADCRM_CAPTURE_RATE_SITE_KEY", default="1200/minute")
LEADCRM_CAPTURE_MIN_FILL_SECONDS = env.int("LEADCRM_CAPTURE_MIN_FILL_SECONDS", default=3)
# Enrichment (enrichment/): the external HTTP provider, off while its URL is unset; its key
# is sent as "Authorization: Bearer <key>"; one call waits at most this many seconds.
LEADCRM_ENRICHMENT_URL = env.str("LEADCRM_ENRICHMENT_URL", default="")
LEADCRM_ENRICHMENT_API_KEY = env.str("LEADCRM_ENRICHMENT_API_KEY", default="")
LEADCRM_ENRICHMENT_TIMEOUT = env.float("LEADCRM_ENRICHMENT_TIMEOUT", default=5.0)
# GDPR retention (compliance/): leads with no activity for more than N months are erased by
# the nightly beat task (0, the default: off), CHUNK leads per transaction, MAX_CHUNKS per run.
LEADCRM_RETENTION_INACTIVE_MONTHS = env.int("LEADCRM_RETENTION_INACTIVE_MONTHS", default=0)
LEADCRM_RETENTION_CHUNK = env.int("LEADCRM_RETENTION_CHUNK", default=100)
LEADCRM_RETENTION_MAX_CHUNKS = env.int("LEADCRM_RETENTION_MAX_CHUNKS", default=50)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
# Dotted path of a function returning the active MQL threshold: the scoring app's, which
# falls back on LEADCRM_MQL_THRESHOLD while no rule set is active.
LEADCRM_MQL_THRESHOLD_SELECTOR = env.str("LEADCRM_MQL_THRESHOLD_SELECTOR", default="scoring.selectors.mql_threshold")
