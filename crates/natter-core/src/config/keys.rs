//! The table of every configuration key: its name, environment variable, documentation
//! and parser.

use std::path::PathBuf;
use std::str::FromStr;

use super::{Key, LogFormat, SecretSourceKind, VaultAuthMethod};
use crate::secret::Secret;

/// Every configuration key, in documentation order.
pub static KEYS: &[Key] = &[
    Key {
        name: "http.addr",
        env: "NATTER_HTTP_ADDR",
        doc: "Address of the HTTP server (JSON API, /healthz, /readyz, /metrics); in standalone mode gRPC shares it. Default 127.0.0.1:8080.",
        set: |c, v| parse(v).map(|x| c.http_addr = x),
    },
    Key {
        name: "grpc.addr",
        env: "NATTER_GRPC_ADDR",
        doc: "Address of the gRPC server when a service runs alone. Default 127.0.0.1:50051.",
        set: |c, v| parse(v).map(|x| c.grpc_addr = x),
    },
    Key {
        name: "data_dir",
        env: "NATTER_DATA_DIR",
        doc: "Standalone data directory (SQLite database, generated secrets). Default ./natter-data.",
        set: |c, v| non_empty(v).map(|x| c.data_dir = PathBuf::from(x)),
    },
    Key {
        name: "database.url",
        env: "NATTER_DATABASE_URL",
        doc: "postgres://… or sqlite://… connection URL. Unset: SQLite file natter.db in the data dir.",
        set: |c, v| database_url(v).map(|x| c.database.url = Some(Secret::new(x))),
    },
    Key {
        name: "database.max_connections",
        env: "NATTER_DATABASE_MAX_CONNECTIONS",
        doc: "Maximum pooled database connections (1-1000). Default 16 on PostgreSQL; on SQLite a reader per core, 4 to 16, beside its one writer.",
        set: |c, v| in_range(v, 1, 1000).map(|x| c.database.max_connections = Some(x as u32)),
    },
    Key {
        name: "database.max_lifetime_secs",
        env: "NATTER_DATABASE_MAX_LIFETIME_SECS",
        doc: "A pooled connection is replaced after this many seconds, so rotated database credentials take over; keep it below their lifetime (10-86400). Default 1800.",
        set: |c, v| in_range(v, 10, 86_400).map(|x| c.database.max_lifetime_secs = x),
    },
    Key {
        name: "database.acquire_timeout_ms",
        env: "NATTER_DATABASE_ACQUIRE_TIMEOUT_MS",
        doc: "Longest wait for a database connection, in milliseconds (100-60000); past it, while the database is down or every connection is busy, requests are answered 503 / UNAVAILABLE. Default 5000.",
        set: |c, v| in_range(v, 100, 60_000).map(|x| c.database.acquire_timeout_ms = x),
    },
    Key {
        name: "redis.url",
        env: "NATTER_REDIS_URL",
        doc: "redis://… URL for the token deny-list, rate limits and fan-out. Unset: in-memory (single process only).",
        set: |c, v| redis_url(v).map(|x| c.redis_url = Some(Secret::new(x))),
    },
    Key {
        name: "redis.timeout_ms",
        env: "NATTER_REDIS_TIMEOUT_MS",
        doc: "Bound on connecting to Redis and on waiting for one answer, in milliseconds (50-60000). A call whose connection failed is tried once more on a new connection, so while Redis is down a request waits at most four times this before it is answered 503 / UNAVAILABLE (WebSocket: close 1013). Default 500.",
        set: |c, v| in_range(v, 50, 60_000).map(|x| c.redis_timeout_ms = x),
    },
    Key {
        name: "secrets.source",
        env: "NATTER_SECRETS_SOURCE",
        doc: "file (secrets.json in the data dir, generated on first start), env (NATTER_JWT_KEYS, NATTER_COOKIE_KEY) or vault (KV v2, see the vault.* keys and docs/vault.md). Default file.",
        set: |c, v| {
            use SecretSourceKind::*;
            choice(v, &[("file", File), ("env", Env), ("vault", Vault)])
                .map(|x| c.secrets_source = x)
        },
    },
    Key {
        name: "secrets.poll_secs",
        env: "NATTER_SECRETS_POLL_SECS",
        doc: "How often secrets are re-read to apply rotations without a restart, in seconds (1-3600). Default 30.",
        set: |c, v| in_range(v, 1, 3600).map(|x| c.secrets_poll_secs = x),
    },
    Key {
        name: "vault.addr",
        env: "VAULT_ADDR",
        doc: "Vault (or OpenBao) address, e.g. https://vault.vault:8200. Required when secrets.source is vault.",
        set: |c, v| http_url(v).map(|x| c.vault.addr = Some(x.trim_end_matches('/').into())),
    },
    Key {
        name: "vault.auth_method",
        env: "NATTER_VAULT_AUTH_METHOD",
        doc: "token (VAULT_TOKEN, for development), kubernetes (the pod's service-account token, TokenReview) or jwt (the service-account token checked against a public key, no TokenReview). Default token.",
        set: |c, v| {
            use VaultAuthMethod::*;
            let methods = [("token", Token), ("kubernetes", Kubernetes), ("jwt", Jwt)];
            choice(v, &methods).map(|x| c.vault.auth_method = x)
        },
    },
    Key {
        name: "vault.token",
        env: "VAULT_TOKEN",
        doc: "Vault token for the token auth method. Never logged.",
        set: |c, v| non_empty(v).map(|x| c.vault.token = Some(Secret::new(x.into()))),
    },
    Key {
        name: "vault.auth_mount",
        env: "NATTER_VAULT_AUTH_MOUNT",
        doc: "Mount path of the kubernetes or jwt auth method. Default the method's name.",
        set: |c, v| non_empty(v).map(|x| c.vault.auth_mount = Some(x.trim_matches('/').into())),
    },
    Key {
        name: "vault.role",
        env: "NATTER_VAULT_ROLE",
        doc: "Vault role to log in as (kubernetes and jwt methods).",
        set: |c, v| non_empty(v).map(|x| c.vault.role = Some(x.into())),
    },
    Key {
        name: "vault.token_file",
        env: "NATTER_VAULT_TOKEN_FILE",
        doc: "Service-account token presented at login, re-read at every login. Default /var/run/secrets/kubernetes.io/serviceaccount/token.",
        set: |c, v| non_empty(v).map(|x| c.vault.token_file = PathBuf::from(x)),
    },
    Key {
        name: "vault.kv_mount",
        env: "NATTER_VAULT_KV_MOUNT",
        doc: "KV version 2 mount holding Natter's secrets. Default secret.",
        set: |c, v| non_empty(v).map(|x| c.vault.kv_mount = x.trim_matches('/').into()),
    },
    Key {
        name: "vault.kv_path",
        env: "NATTER_VAULT_KV_PATH",
        doc: "Path under the KV mount; the secrets are <path>/jwt, <path>/cookie, <path>/database and <path>/redis (docs/vault.md). Default natter.",
        set: |c, v| non_empty(v).map(|x| c.vault.kv_path = x.trim_matches('/').into()),
    },
    Key {
        name: "vault.database_path",
        env: "NATTER_VAULT_DATABASE_PATH",
        doc: "Path under the KV mount of the database secret, if not <kv_path>/database.",
        set: |c, v| non_empty(v).map(|x| c.vault.database_path = Some(x.trim_matches('/').into())),
    },
    Key {
        name: "vault.database_role",
        env: "NATTER_VAULT_DATABASE_ROLE",
        doc: "Role of Vault's database secrets engine to lease PostgreSQL credentials from (renewed, replaced before they expire); instead of the KV database secret.",
        set: |c, v| non_empty(v).map(|x| c.vault.database_role = Some(x.into())),
    },
    Key {
        name: "vault.database_mount",
        env: "NATTER_VAULT_DATABASE_MOUNT",
        doc: "Mount of Vault's database secrets engine.",
        set: |c, v| non_empty(v).map(|x| c.vault.database_mount = x.trim_matches('/').into()),
    },
    Key {
        name: "vault.redis_path",
        env: "NATTER_VAULT_REDIS_PATH",
        doc: "Path under the KV mount of the Redis secret, if not <kv_path>/redis.",
        set: |c, v| non_empty(v).map(|x| c.vault.redis_path = Some(x.trim_matches('/').into())),
    },
    Key {
        name: "vault.smtp_path",
        env: "NATTER_VAULT_SMTP_PATH",
        doc: "KV path (under the mount) of the SMTP secret, when not `<vault.kv_path>/smtp`.",
        set: |c, v| non_empty(v).map(|x| c.vault.smtp_path = Some(x.trim_matches('/').into())),
    },
    Key {
        name: "vault.start_deadline_secs",
        env: "NATTER_VAULT_START_DEADLINE_SECS",
        doc: "How long start-up retries an unreachable Vault, with backoff, before exiting (1-3600). Default 60.",
        set: |c, v| in_range(v, 1, 3600).map(|x| c.vault.start_deadline_secs = x),
    },
    Key {
        name: "operator.watch_namespaces",
        env: "NATTER_OPERATOR_WATCH_NAMESPACES",
        doc: "Namespaces whose ChatClusters `natter operator` manages, comma-separated (so two operators can divide a cluster); empty: every namespace. Default empty.",
        set: |c, v| {
            c.operator_watch_namespaces = v
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            Ok(())
        },
    },
    Key {
        name: "http.trust_forwarded_for",
        env: "NATTER_TRUST_FORWARDED_FOR",
        doc: "Take the client address from the first X-Forwarded-For entry (set behind an ingress). Default false.",
        set: |c, v| parse(v).map(|x| c.trust_forwarded_for = x),
    },
    Key {
        name: "auth.issuer",
        env: "NATTER_AUTH_ISSUER",
        doc: "`iss` claim of access tokens. Default natter.",
        set: |c, v| non_empty(v).map(|x| c.auth.issuer = x.into()),
    },
    Key {
        name: "auth.audience",
        env: "NATTER_AUTH_AUDIENCE",
        doc: "`aud` claim of access tokens. Default natter.",
        set: |c, v| non_empty(v).map(|x| c.auth.audience = x.into()),
    },
    Key {
        name: "auth.access_ttl_secs",
        env: "NATTER_AUTH_ACCESS_TTL_SECS",
        doc: "Access token lifetime in seconds (10-86400). Default 900.",
        set: |c, v| in_range(v, 10, 86_400).map(|x| c.auth.access_ttl_secs = x),
    },
    Key {
        name: "auth.refresh_ttl_secs",
        env: "NATTER_AUTH_REFRESH_TTL_SECS",
        doc: "Refresh token lifetime in seconds; every refresh issues a new one (60-31536000). Default 2592000 (30 days).",
        set: |c, v| in_range(v, 60, 31_536_000).map(|x| c.auth.refresh_ttl_secs = x),
    },
    Key {
        name: "auth.argon2.memory_kib",
        env: "NATTER_AUTH_ARGON2_MEMORY_KIB",
        doc: "Argon2id memory cost in KiB (8-4194304). Default 19456 (OWASP). Changing it re-hashes each password at its next login.",
        set: |c, v| in_range(v, 8, 4_194_304).map(|x| c.auth.argon2.memory_kib = x as u32),
    },
    Key {
        name: "auth.argon2.iterations",
        env: "NATTER_AUTH_ARGON2_ITERATIONS",
        doc: "Argon2id time cost (1-64). Default 2.",
        set: |c, v| in_range(v, 1, 64).map(|x| c.auth.argon2.iterations = x as u32),
    },
    Key {
        name: "auth.argon2.parallelism",
        env: "NATTER_AUTH_ARGON2_PARALLELISM",
        doc: "Argon2id lanes (1-16). Default 1.",
        set: |c, v| in_range(v, 1, 16).map(|x| c.auth.argon2.parallelism = x as u32),
    },
    Key {
        name: "auth.login_limit_per_ip",
        env: "NATTER_AUTH_LOGIN_LIMIT_PER_IP",
        doc: "Login attempts allowed per client address per window (1-1000000). Default 30.",
        set: |c, v| in_range(v, 1, 1_000_000).map(|x| c.auth.login_limit_per_ip = x as u32),
    },
    Key {
        name: "auth.login_limit_per_username",
        env: "NATTER_AUTH_LOGIN_LIMIT_PER_USERNAME",
        doc: "Login attempts allowed per username or email per window (1-1000000). Default 10.",
        set: |c, v| in_range(v, 1, 1_000_000).map(|x| c.auth.login_limit_per_username = x as u32),
    },
    Key {
        name: "auth.login_limit_window_secs",
        env: "NATTER_AUTH_LOGIN_LIMIT_WINDOW_SECS",
        doc: "Length of the login rate-limit window in seconds (1-86400). Default 60.",
        set: |c, v| in_range(v, 1, 86_400).map(|x| c.auth.login_limit_window_secs = x),
    },
    Key {
        name: "auth.grpc_url",
        env: "NATTER_AUTH_GRPC_URL",
        doc: "Where other services reach the auth service's gRPC port to fetch its signing keys (JWKS), e.g. http://natter-auth:50051. Default http://127.0.0.1:50051.",
        set: |c, v| http_url(v).map(|x| c.auth.grpc_url = x.into()),
    },
    Key {
        name: "website.write_limit",
        env: "NATTER_WEBSITE_WRITE_LIMIT",
        doc: "Writes (create, rename, delete, join, leave, member changes, messages, profile) allowed per user per window on the website API; more get 429 (1-1000000). Default 120.",
        set: |c, v| in_range(v, 1, 1_000_000).map(|x| c.website_write_limit = x as u32),
    },
    Key {
        name: "website.write_window_secs",
        env: "NATTER_WEBSITE_WRITE_WINDOW_SECS",
        doc: "Length of the website write-limit window in seconds (1-86400). Default 60.",
        set: |c, v| in_range(v, 1, 86_400).map(|x| c.website_write_window_secs = x),
    },
    Key {
        name: "notify.receipts_max_members",
        env: "NATTER_NOTIFY_RECEIPTS_MAX_MEMBERS",
        doc: "Read receipts (\"seen by\") are shown in rooms of at most this many members; every read in such a room is a frame to each of its subscribers (2-10000). Default 50.",
        set: |c, v| in_range(v, 2, 10_000).map(|x| c.receipts_max_members = x as u32),
    },
    Key {
        name: "notify.push_enabled",
        env: "NATTER_NOTIFY_PUSH_ENABLED",
        doc: "Send Web Push notifications to browsers that subscribed, when the secrets hold a VAPID key (standalone: generated in secrets.json; Vault: `<path>/vapid`). Default true.",
        set: |c, v| parse(v).map(|x| c.push_enabled = x),
    },
    Key {
        name: "notify.push_contact",
        env: "NATTER_NOTIFY_PUSH_CONTACT",
        doc: "The contact push services see with every push (a mailto: or https: URL, RFC 8292). Default mailto:postmaster@localhost.",
        set: |c, v| contact(v).map(|x| c.push_contact = x.into()),
    },
    Key {
        name: "notify.push_delay_secs",
        env: "NATTER_NOTIFY_PUSH_DELAY_SECS",
        doc: "A message still unread this many seconds after it was sent is pushed to the recipient's browsers (0-3600). Default 15.",
        set: |c, v| in_range(v, 0, 3600).map(|x| c.push_delay_secs = x),
    },
    Key {
        name: "notify.email_enabled",
        env: "NATTER_NOTIFY_EMAIL_ENABLED",
        doc: "Send email digests of unread mentions and direct messages to users with an email address who did not turn them off (needs notify.smtp_url). Default false.",
        set: |c, v| parse(v).map(|x| c.email.enabled = x),
    },
    Key {
        name: "notify.smtp_url",
        env: "NATTER_NOTIFY_SMTP_URL",
        doc: "The SMTP server digests are sent through: smtp://host:port (plain, for a local relay), smtp://host:587?tls=required (STARTTLS) or smtps://host (TLS); user and password in the URL or in the secrets' smtp part (Vault `<path>/smtp`). No default.",
        set: |c, v| smtp_url(v).map(|x| c.email.smtp_url = Some(Secret::new(x.into()))),
    },
    Key {
        name: "notify.email_from",
        env: "NATTER_NOTIFY_EMAIL_FROM",
        doc: "The From address of digests, e.g. `Natter <natter@example.com>`. Default Natter <natter@localhost>.",
        set: |c, v| mailbox(v).map(|x| c.email.from = x.into()),
    },
    Key {
        name: "notify.email_delay_secs",
        env: "NATTER_NOTIFY_EMAIL_DELAY_SECS",
        doc: "A mention or direct message still unread this many seconds after it was sent goes into the recipient's next digest; a user gets at most one digest per this many seconds (60-604800). Default 3600.",
        set: |c, v| in_range(v, 60, 604_800).map(|x| c.email.delay_secs = x),
    },
    Key {
        name: "notify.public_url",
        env: "NATTER_NOTIFY_PUBLIC_URL",
        doc: "The address users open Natter at (e.g. https://chat.example.com), for links in digests. Default http:// and the HTTP address.",
        set: |c, v| http_url(v).map(|x| c.email.public_url = Some(x.trim_end_matches('/').into())),
    },
    Key {
        name: "frontend.website_grpc_url",
        env: "NATTER_WEBSITE_GRPC_URL",
        doc: "Where the frontend reaches the website service's gRPC port, e.g. http://natter-website:50051. Default http://127.0.0.1:50051.",
        set: |c, v| http_url(v).map(|x| c.frontend.website_grpc_url = x.into()),
    },
    Key {
        name: "frontend.secure_cookies",
        env: "NATTER_FRONTEND_SECURE_COOKIES",
        doc: "Mark the session cookies Secure (sent over HTTPS only); set when users reach Natter over HTTPS. Default false.",
        set: |c, v| parse(v).map(|x| c.frontend.secure_cookies = x),
    },
    Key {
        name: "telemetry.log_format",
        env: "NATTER_LOG_FORMAT",
        doc: "pretty or json. Default pretty; the filter itself comes from RUST_LOG (default info).",
        set: |c, v| {
            let formats = [("pretty", LogFormat::Pretty), ("json", LogFormat::Json)];
            choice(v, &formats).map(|x| c.telemetry.log_format = x)
        },
    },
    Key {
        name: "telemetry.otlp_endpoint",
        env: "OTEL_EXPORTER_OTLP_ENDPOINT",
        doc: "OTLP/gRPC collector, e.g. http://127.0.0.1:4317. Traces are exported only when set.",
        set: |c, v| non_empty(v).map(|x| c.telemetry.otlp_endpoint = Some(x.into())),
    },
    Key {
        name: "telemetry.sample_ratio",
        env: "NATTER_TRACE_SAMPLE_RATIO",
        doc: "Fraction of new traces sampled, 0.0-1.0; child spans follow their parent. Default 1.0.",
        set: |c, v| {
            let ratio: f64 = parse(v)?;
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("must be between 0.0 and 1.0, got {ratio}"));
            }
            c.telemetry.sample_ratio = ratio;
            Ok(())
        },
    },
];

fn parse<T: FromStr>(value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e: T::Err| format!("cannot parse `{value}`: {e}"))
}

fn in_range(value: &str, min: u64, max: u64) -> Result<u64, String> {
    let number: u64 = parse(value)?;
    if !(min..=max).contains(&number) {
        return Err(format!("must be between {min} and {max}, got {number}"));
    }
    Ok(number)
}

fn non_empty(value: &str) -> Result<&str, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(value)
}

/// One of `options` by name; the error lists them.
fn choice<T: Copy>(value: &str, options: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, x)) = options.iter().find(|(name, _)| *name == value) {
        return Ok(*x);
    }
    let names: Vec<String> = options
        .iter()
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    let (last, rest) = names.split_last().expect("at least one option");
    Err(format!(
        "expected {} or {last}, got `{value}`",
        rest.join(", ")
    ))
}

fn contact(value: &str) -> Result<&str, String> {
    if value.starts_with("mailto:") || value.starts_with("https://") {
        return Ok(value);
    }
    Err("expected a mailto: or https: URL".into())
}

fn smtp_url(value: &str) -> Result<&str, String> {
    if value.starts_with("smtp://") || value.starts_with("smtps://") {
        return Ok(value);
    }
    Err("expected an smtp:// or smtps:// URL".into())
}

fn mailbox(value: &str) -> Result<&str, String> {
    match value.parse::<lettre::message::Mailbox>() {
        Ok(_) => Ok(value),
        Err(e) => Err(format!("not an email address: {e}")),
    }
}

fn http_url(value: &str) -> Result<&str, String> {
    if value.starts_with("http://") || value.starts_with("https://") {
        return Ok(value);
    }
    Err("expected an http:// or https:// URL".into())
}

fn database_url(value: &str) -> Result<String, String> {
    if value.starts_with("postgres://")
        || value.starts_with("postgresql://")
        || value.starts_with("sqlite:")
    {
        return Ok(value.into());
    }
    Err("expected a postgres:// or sqlite: URL".into())
}

fn redis_url(value: &str) -> Result<String, String> {
    if value.starts_with("redis://") || value.starts_with("rediss://") {
        return Ok(value.into());
    }
    Err("expected a redis:// or rediss:// URL".into())
}
