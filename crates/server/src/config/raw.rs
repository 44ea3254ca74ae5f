//! Every setting, once: the serde struct the layers fill ([`RawSettings`]) and the reference table the docs are
//! generated from ([`SETTINGS`]) come from the one list below, so neither can forget a setting.

use serde::Deserialize;

/// One setting as the reference documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The TOML key (the environment name without `CDVAULT_`, in lower case).
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// What it means (Markdown).
    pub meaning: &'static str,
    /// What applies when it is unset (Markdown).
    pub default: &'static str,
    /// Whether its value is a secret (or holds one, like the database URL's password).
    pub secret: bool,
}

/// What the operator wrote for one setting, as text: a TOML number or boolean is read as its text, so that typing
/// happens in one place (`Settings::try_from`) whose messages name the setting and never quote the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Text(pub String);

/// Never the value: it may be a secret.
impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Text([REDACTED])")
    }
}

impl Text {
    /// The value as written, or `None` when empty or blank: an empty value means unset.
    pub fn present(this: Option<&Self>) -> Option<&str> {
        this.map(|text| text.0.as_str()).filter(|text| !text.trim().is_empty())
    }

    /// A whole number within `range` for the setting named `name`; `None` when unset.
    pub fn number(
        this: Option<&Self>,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, super::ConfigError> {
        let Some(text) = Self::present(this) else { return Ok(None) };
        let value: u64 = text.trim().parse().map_err(|_| super::err(format!("{name} is not a whole number")))?;
        if !range.contains(&value) {
            return Err(super::err(format!("{name} is outside {}..={}", range.start(), range.end())));
        }
        Ok(Some(value))
    }

    /// A `true` / `false` setting named `name`; `None` when unset.
    pub fn flag(this: Option<&Self>, name: &str) -> Result<Option<bool>, super::ConfigError> {
        match Self::present(this).map(str::trim) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(super::err(format!("{name} must be true or false"))),
        }
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl serde::de::Visitor<'_> for Scalar {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Scalar)
    }
}

/// Declares [`RawSettings`] and [`SETTINGS`] from one list: adding a setting is one entry here.
macro_rules! settings {
    ($( $key:ident = $env:literal, secret: $secret:literal, meaning: $meaning:literal, default: $default:literal; )*) => {
        /// Every setting as given: the TOML file's values overridden by the environment's. Unknown keys are refused
        /// (only the file can hold them: the environment layer reads exactly these names).
        #[derive(Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct RawSettings {
            $( pub $key: Option<Text>, )*
            /// The TOML file's `[jwt]` table (`[[jwt.issuers]]`): not a flat setting, so not in the list.
            pub jwt: Option<super::written::JwtTable>,
        }

        /// The reference of every setting, in the order the docs list them.
        pub const SETTINGS: &[Setting] = &[
            $( Setting { key: stringify!($key), env: $env, meaning: $meaning, default: $default, secret: $secret }, )*
        ];
    };
}

settings! {
    listen = "CDVAULT_LISTEN", secret: false,
        meaning: "Address and port to listen on (plain HTTP).",
        default: "`127.0.0.1:8080` (the container image sets `0.0.0.0:8080`)";
    database_url = "CDVAULT_DATABASE_URL", secret: true,
        meaning: "`postgres://user:password@host:port/db` or `sqlite://path?mode=rwc`. **Setting it selects the production set-up.**",
        default: "unset: SQLite at `<data dir>/cdvault.db` (development set-up)";
    data_dir = "CDVAULT_DATA_DIR", secret: false,
        meaning: "Development set-up only: the directory of the SQLite database, `root.key` and `jwt-hs256.secret`.",
        default: "`./cdvault-data`";
    root_key = "CDVAULT_ROOT_KEY", secret: true,
        meaning: "The root key: 32 random bytes in base64 (e.g. `head -c 32 /dev/urandom \\| base64`).",
        default: "development: `<data dir>/root.key`, created if absent; production: required";
    root_key_file = "CDVAULT_ROOT_KEY_FILE", secret: false,
        meaning: "A file holding the root key.",
        default: "none";
    jwt_algorithm = "CDVAULT_JWT_ALGORITHM", secret: false,
        meaning: "The one accepted token algorithm of the `CDVAULT_JWT_*` issuer: `HS256`, `RS256`, `PS256`, `ES256` or `EdDSA`.",
        default: "`HS256`";
    jwt_hs256_secret = "CDVAULT_JWT_HS256_SECRET", secret: true,
        meaning: "HS256 shared secret, at least 32 bytes, used as given (not base64-decoded).",
        default: "development: `<data dir>/jwt-hs256.secret`, created if absent; production with HS256: required";
    jwt_hs256_secret_file = "CDVAULT_JWT_HS256_SECRET_FILE", secret: false,
        meaning: "A file holding the HS256 secret.",
        default: "none";
    jwt_public_key_file = "CDVAULT_JWT_PUBLIC_KEY_FILE", secret: false,
        meaning: "PEM public key for `RS256`, `PS256`, `ES256` or `EdDSA`. Required for those; setting it with `HS256` is an error.",
        default: "none";
    jwt_issuer = "CDVAULT_JWT_ISSUER", secret: false,
        meaning: "The required `iss` claim.",
        default: "development: `cdvault-dev`; production: required";
    jwt_audience = "CDVAULT_JWT_AUDIENCE", secret: false,
        meaning: "The required `aud` claim.",
        default: "development: `cdvault`; production: required";
    jwt_max_lifetime = "CDVAULT_JWT_MAX_LIFETIME", secret: false,
        meaning: "The longest lifetime (`exp - iat`, in seconds, 60 to 31,536,000) of a token accepted from any issuer; a token without `iat` is then refused.",
        default: "no limit";
    cdiscount_sts_url = "CDVAULT_CDISCOUNT_STS_URL", secret: false,
        meaning: "Base URL (`https://` or `http://`) of Cdiscount's legacy STS, which issues Marketplace API tokens. cdvault appends `/users/httpIssue.svc/`; a trailing `/` is ignored.",
        default: "production: `https://sts.cdiscount.com`; development: `http://127.0.0.1:8089` (the fake marketplace)";
    octopia_auth_url = "CDVAULT_OCTOPIA_AUTH_URL", secret: false,
        meaning: "Base URL (`https://` or `http://`) of Octopia's OAuth server. cdvault appends `/auth/realms/maas/protocol/openid-connect/token`; a trailing `/` is ignored.",
        default: "production: `https://auth.octopia-io.net`; development: `http://127.0.0.1:8089` (the fake marketplace)";
    rewrap_batch_size = "CDVAULT_REWRAP_BATCH_SIZE", secret: false,
        meaning: "Rows the rewrap worker takes per batch, 1 to 100,000. See [Pacing](key-rotation.md#pacing).",
        default: "`500`";
    rewrap_batch_pause_ms = "CDVAULT_REWRAP_BATCH_PAUSE_MS", secret: false,
        meaning: "Milliseconds the rewrap worker waits between two batches, 0 to 60,000.",
        default: "`0`";
    rewrap_workers = "CDVAULT_REWRAP_WORKERS", secret: false,
        meaning: "Batches one replica's rewrap worker runs at once on PostgreSQL, 1 to 16: each locks its own rows, so one reseals while another waits for the database. More finish a rotation sooner and take more of the machine from requests. SQLite always runs one. See [Pacing](key-rotation.md#pacing).",
        default: "`1`";
    graphiql = "CDVAULT_GRAPHIQL", secret: false,
        meaning: "Whether `GET /graphql` serves GraphiQL (from assets embedded in the binary, under a strict Content-Security-Policy): `true` or `false`.",
        default: "development: `true`; production: `false`";
    introspection = "CDVAULT_INTROSPECTION", secret: false,
        meaning: "Whether the schema answers introspection (`__schema`, `__type`; graphql-js's standard introspection query fits its depth bound): `true` or `false`. Off, such a query is refused with `INTROSPECTION_DISABLED` and the schema is the published `schema.graphql`.",
        default: "`true`";
    rate_identity_per_second = "CDVAULT_RATE_IDENTITY_PER_SECOND", secret: false,
        meaning: "Requests per second one verified identity (issuer and subject) may send to this replica, a whole number from 1; past it and its burst, `429 RATE_LIMITED` with `Retry-After`. See [Rate limits](security.md#rate-limits).",
        default: "`100000`";
    rate_identity_burst = "CDVAULT_RATE_IDENTITY_BURST", secret: false,
        meaning: "Requests one identity may send at once before its rate applies, a whole number from 1.",
        default: "`100000`";
    rate_address_per_second = "CDVAULT_RATE_ADDRESS_PER_SECOND", secret: false,
        meaning: "Requests per second one source address may send to this replica without a token or with a refused one (checked before the token and the schema), a whole number from 1.",
        default: "`20`";
    rate_address_burst = "CDVAULT_RATE_ADDRESS_BURST", secret: false,
        meaning: "Such requests one address may send at once before its rate applies, a whole number from 1.",
        default: "`40`";
    trusted_proxies = "CDVAULT_TRUSTED_PROXIES", secret: false,
        meaning: "Peers (ingress, load balancer) whose `X-Forwarded-For` header names the source address, comma-separated IP addresses or CIDR ranges, e.g. `10.0.0.0/8, 192.0.2.10`. The source is then the nearest address in the header that is not a trusted proxy; from any other peer the header is ignored. A range of every address (`/0`) is refused.",
        default: "none: the source address is the TCP peer";
    ws_init_timeout_ms = "CDVAULT_WS_INIT_TIMEOUT_MS", secret: false,
        meaning: "Milliseconds a `/graphql/ws` socket may stay open before its `connection_init` (then closed 4408), 100 to 60,000.",
        default: "`5000`";
    ws_subscriptions_per_socket = "CDVAULT_WS_SUBSCRIPTIONS_PER_SOCKET", secret: false,
        meaning: "Subscriptions running at once on one `/graphql/ws` socket (one more: closed 4429), 1 to 10,000.",
        default: "`100`";
    ws_sockets_per_identity = "CDVAULT_WS_SOCKETS_PER_IDENTITY", secret: false,
        meaning: "`/graphql/ws` sockets one identity may hold open at once on this replica (one more: closed 4429), 1 to 100,000.",
        default: "`64`";
    metrics_listen = "CDVAULT_METRICS_LISTEN", secret: false,
        meaning: "Address and port of the metrics listener (plain HTTP, `GET /metrics` in the Prometheus text format), e.g. `127.0.0.1:9464`; keep it off the API's ingress. The families are in `docs/operations.md`.",
        default: "unset: no metrics listener";
    metrics_on_main = "CDVAULT_METRICS_ON_MAIN", secret: false,
        meaning: "`true` to serve `GET /metrics` on the main listener (`CDVAULT_LISTEN`) too, for a set-up with one port; then the API's ingress must not route `/metrics`.",
        default: "`false`";
    // TLS and CORS (issue 18).
    tls_cert_file = "CDVAULT_TLS_CERT_FILE", secret: false,
        meaning: "PEM certificate chain (leaf first) of the main listener: set with `CDVAULT_TLS_KEY_FILE` (both or neither), the listener speaks HTTPS only (WebSocket, `/healthz`, `/readyz` and `/metrics` on main included), and every answer carries `Strict-Transport-Security`. Both files are read again every `CDVAULT_TLS_RELOAD_POLL_MS`: a new valid pair serves new connections without a restart; a bad one is logged and the old pair kept. See [TLS](deploy.md#tls). The metrics listener stays plain HTTP.",
        default: "none: plain HTTP (TLS ends at the ingress)";
    tls_key_file = "CDVAULT_TLS_KEY_FILE", secret: false,
        meaning: "PEM private key (PKCS#8, PKCS#1 or SEC1, unencrypted) of that certificate; readable by cdvault only.",
        default: "none";
    tls_reload_poll_ms = "CDVAULT_TLS_RELOAD_POLL_MS", secret: false,
        meaning: "Milliseconds between two reads of the certificate and key files, 100 to 3,600,000 (only with TLS).",
        default: "`10000`";
    hsts_max_age = "CDVAULT_HSTS_MAX_AGE", secret: false,
        meaning: "Seconds of the `max-age` of `Strict-Transport-Security`, 0 to 63,072,000, sent on every answer when cdvault speaks TLS (behind a TLS-terminating ingress, the ingress sends it).",
        default: "`31536000`";
    cors_origins = "CDVAULT_CORS_ORIGINS", secret: false,
        meaning: "Browser origins allowed to call the API, comma-separated, each exactly `scheme://host[:port]` (`http` or `https`, no path, no `*`), e.g. `https://console.example.com, http://localhost:5173`. Their preflights and requests get CORS headers (methods `GET`, `POST`, `OPTIONS`; headers `authorization`, `content-type`, `x-request-id`; `x-request-id` and `Retry-After` exposed; never credentials mode), and a `/graphql/ws` upgrade whose `Origin` is another is refused (`403 ORIGIN_NOT_ALLOWED`). See [WebSocket](websocket.md#browsers-and-origins).",
        default: "none: no CORS header, any WebSocket origin";
    cors_max_age = "CDVAULT_CORS_MAX_AGE", secret: false,
        meaning: "Seconds a browser may cache a preflight's answer (`Access-Control-Max-Age`), 0 to 86,400.",
        default: "`600`";
    // Trusted documents (issue 20).
    trusted_documents = "CDVAULT_TRUSTED_DOCUMENTS", secret: false,
        meaning: "The clients' manifests of persisted documents, comma-separated paths, e.g. `/etc/cdvault/typescript.json, /etc/cdvault/rust.json`: each a JSON object of sha256 hex -> exact document text, as GraphQL Code Generator's persisted documents write it (`clients/typescript/src/generated/persisted-documents.json`). Set, only their operations run, over HTTP and WebSocket, named by `extensions.persistedQuery.sha256Hash` or by their exact text; any other is refused before it is parsed (`DOCUMENT_NOT_TRUSTED`, `PERSISTED_QUERY_NOT_FOUND`), introspection and GraphiQL's queries included. A manifest that cannot be read, is not such an object, or has an entry whose key is not the sha256 of its document stops start-up. Recommended in production: see [Trusted documents](security.md#trusted-documents).",
        default: "unset: any operation runs";
    // Webhooks (issue 21).
    webhook_allow_http = "CDVAULT_WEBHOOK_ALLOW_HTTP", secret: false,
        meaning: "`true` to accept plain `http://` webhook endpoints (development and tests only: events and signatures then cross the network in the clear). See [Webhooks](webhooks.md).",
        default: "`false`: `https://` only";
    webhook_allowed_networks = "CDVAULT_WEBHOOK_ALLOWED_NETWORKS", secret: false,
        meaning: "Non-public networks webhook deliveries may connect to, comma-separated IP addresses or CIDR ranges, e.g. `10.20.0.0/16` for an internal receiver or `127.0.0.1/32` for one on the same host. Loopback, private, link-local, shared (CGNAT), multicast, documentation and reserved addresses are otherwise refused: at registration when the URL holds an address, and on the address a name resolves to when each delivery connects (no redirect is followed). A range of every address (`/0`) is refused.",
        default: "none: public addresses only";
    webhook_max_attempts = "CDVAULT_WEBHOOK_MAX_ATTEMPTS", secret: false,
        meaning: "Attempts of one webhook delivery before it becomes a dead letter (listed and replayable in GraphQL), 1 to 1,000.",
        default: "`40` (about a day and a half with the default backoff)";
    webhook_retry_base_ms = "CDVAULT_WEBHOOK_RETRY_BASE_MS", secret: false,
        meaning: "Milliseconds before the first retry of a failed webhook delivery, 10 to 3,600,000; each further failure doubles the wait, up to `CDVAULT_WEBHOOK_RETRY_MAX_MS`. The endpoint's later events wait behind it, so they arrive in order.",
        default: "`5000`";
    webhook_retry_max_ms = "CDVAULT_WEBHOOK_RETRY_MAX_MS", secret: false,
        meaning: "The longest wait between two attempts of a webhook delivery, in milliseconds, 10 to 86,400,000, and at least `CDVAULT_WEBHOOK_RETRY_BASE_MS`.",
        default: "`3600000` (an hour)";
    webhook_timeout_ms = "CDVAULT_WEBHOOK_TIMEOUT_MS", secret: false,
        meaning: "Milliseconds one webhook attempt may take, connection included, 100 to 60,000; past it the attempt failed and is retried.",
        default: "`10000`";
    webhook_lease_ms = "CDVAULT_WEBHOOK_LEASE_MS", secret: false,
        meaning: "Milliseconds a replica holds a webhook endpoint while it delivers to it, renewed before each attempt, 1,000 to 600,000, longer than `CDVAULT_WEBHOOK_TIMEOUT_MS`. A replica that dies mid-delivery leaves the endpoint to the others after it; the delivery is then sent again (at least once).",
        default: "`30000`";
    webhook_poll_ms = "CDVAULT_WEBHOOK_POLL_MS", secret: false,
        meaning: "Milliseconds between two looks of each replica's dispatcher for webhook deliveries due, 10 to 60,000, when nothing woke it (every committed change wakes it at once: on PostgreSQL every replica's, on SQLite this replica's).",
        default: "`1000`";
    access_poll_ms = "CDVAULT_ACCESS_POLL_MS", secret: false,
        meaning: "Milliseconds between two reads of the access grants, token revocations and freeze by each replica, 100 to 60,000: a change made on another replica takes effect here within it (on this replica at once).",
        default: "`1000`";
    change_feed_retention = "CDVAULT_CHANGE_FEED_RETENTION", secret: false,
        meaning: "How long the change feeds (`credentialChanged`, `payoutChangeFeed`) keep a change, as a duration with a unit, e.g. `7d`, `36h`, `90m`, `2w`; 1 hour to 3650 days. Every replica prunes older changes (never the newest) on a timer; a subscriber resuming from a cursor older than the oldest kept change gets `CURSOR_EXPIRED`. See [Retention](marketplace.md#retention-of-the-change-feeds).",
        default: "`7d`";
    issue_cache_sellers = "CDVAULT_ISSUE_CACHE_SELLERS", secret: false,
        meaning: "Sellers per credential kind whose newest sealed credential each replica keeps in memory for the issue path, 1,000 to 10,000,000; warmed at start-up in the background, least useful evicted past it. About 600 bytes each: the default's bound is 1.2 GB with both kinds at capacity (see [Sizing](operations.md#memory)). Ciphertexts only; every issue is still checked at its audit commit.",
        default: "`1000000`";
    job_lease_ttl = "CDVAULT_JOB_LEASE_TTL", secret: false,
        meaning: "Seconds a rewrap job's lease lasts without a batch renewing it, 5 to 3600. On SQLite, a crashed server's job is taken over after it; PostgreSQL replicas share the job without a lease.",
        default: "`30`";
    audit_checkpoints = "CDVAULT_AUDIT_CHECKPOINTS", secret: false,
        meaning: "Where the server writes signed checkpoints of the audit chain head (at start-up, every interval, at shutdown): `log` (one `info` line at target `cdvault::audit::checkpoint` whose message is the checkpoint's JSON; ship the log off the host) or `file:<path>` (one JSON line appended per checkpoint, file created 0600). `cdvault audit verify` reads the file by default. A failing sink never stops issuance; `auditChainStatus` reports it.",
        default: "production: `log`; development: `file:<data dir>/audit-checkpoints.jsonl`";
    audit_checkpoint_interval = "CDVAULT_AUDIT_CHECKPOINT_INTERVAL", secret: false,
        meaning: "Seconds between two audit checkpoints, 1 to 86,400.",
        default: "`60`";
    audit_stream = "CDVAULT_AUDIT_STREAM", secret: false,
        meaning: "Streams every committed audit event as one JSON line, in sequence order, for a SIEM collector: `stdout` (from the chain head at start-up) or `file:<path>` (appended, file created 0600, resuming after the last `seq` already in it; a new file gets the whole trail). Every replica streams the whole trail: drop duplicates by `seq` downstream. See docs/audit-stream.md.",
        default: "off";
    replica = "CDVAULT_REPLICA", secret: false,
        meaning: "The name this replica signs its audit checkpoints with (1 to 253 characters, no spaces).",
        default: "the `HOSTNAME` environment variable, else a random id";
    log = "CDVAULT_LOG", secret: false,
        meaning: "Log filter in `tracing` `EnvFilter` syntax, e.g. `info` or `info,cdvault_api=debug`. The log goes to stderr. An invalid filter stops start-up.",
        default: "`info,sqlx=warn`";
    // Logs and traces (issue 17).
    log_format = "CDVAULT_LOG_FORMAT", secret: false,
        meaning: "How log lines are written to stderr: `text` (human-readable) or `json` (one JSON object per line, with the fields of the spans it is in flattened into it: `request_id`, `issuer`, `subject`, `root_fields`, and `trace_id` / `span_id` when traces are exported). See [Logs and traces](operations.md#logs-and-traces).",
        default: "`text`";
    otlp_endpoint = "CDVAULT_OTLP_ENDPOINT", secret: false,
        meaning: "Base URL (`http://` or `https://`) of an OpenTelemetry collector's OTLP/HTTP receiver, e.g. `http://otel-collector:4318`: spans are exported in batches (HTTP/protobuf) to `<url>/v1/traces` as service `cdvault`, and log lines carry their trace id. A `traceparent` header on a request is honoured. The URL is logged: put no credential in it.",
        default: "none: no span is exported";
}

/// Not a field of [`RawSettings`]: it names the file, so it is read before the layers (as `--config FILE` too).
pub const CONFIG_FILE: Setting = Setting {
    key: "config",
    env: "CDVAULT_CONFIG",
    meaning: "Path of the optional TOML file (the same as `--config FILE`).",
    default: "none",
    secret: false,
};

/// The setting whose TOML key is `key`.
pub fn by_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|setting| setting.key == key)
}

/// The setting whose environment variable is `env`.
pub fn by_env(env: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|setting| setting.env == env)
}
