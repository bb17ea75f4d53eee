//! The server's config file (`serve.toml`): listeners, TLS, limits, roles and users.
//!
//! ```toml
//! [server]
//! postgres = "0.0.0.0:5433"        # PostgreSQL wire protocol (psql, DBeaver, ODBC, psycopg)
//! flight = "0.0.0.0:50051"         # Arrow Flight SQL (ADBC, pyarrow, Polars)
//! tls_cert = "/etc/terpadu/server.crt"
//! tls_key = "/etc/terpadu/server.key"
//!
//! [roles.dinsos_kabupaten]         # a role of this deployment
//! tables = ["registry", "reports"]
//! unmasked = false
//!
//! [[users]]
//! name = "bappeda_lebak"
//! role = "planner"
//! scope = "3602"                   # Kabupaten Lebak only
//! password_hash = "$argon2id$v=19$..."   # from `terpadu hash-password`
//! ```
//!
//! Every problem is collected and reported at once, with the user or role it concerns.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::policy::{Policy, RegionScope, TableGroup};
use crate::config::{ConfigError, Diagnostic};

/// The parsed file, before checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    roles: BTreeMap<String, RoleSection>,
    #[serde(default)]
    users: Vec<UserSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    #[serde(default = "default_postgres")]
    postgres: Option<String>,
    #[serde(default = "default_flight")]
    flight: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default = "default_memory")]
    memory_limit_mb: usize,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default = "default_concurrent")]
    max_concurrent_statements: usize,
    #[serde(default = "default_failures")]
    max_login_failures: u32,
    #[serde(default = "default_lockout")]
    lockout_seconds: u64,
    #[serde(default = "default_token_ttl")]
    token_ttl_seconds: u64,
    audit_log: Option<PathBuf>,
}

fn default_postgres() -> Option<String> {
    Some("127.0.0.1:5433".into())
}
fn default_flight() -> Option<String> {
    Some("127.0.0.1:50051".into())
}
fn default_memory() -> usize {
    2048
}
fn default_timeout() -> u64 {
    300
}
fn default_concurrent() -> usize {
    16
}
fn default_failures() -> u32 {
    5
}
fn default_lockout() -> u64 {
    300
}
fn default_token_ttl() -> u64 {
    8 * 3600
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            postgres: default_postgres(),
            flight: default_flight(),
            tls_cert: None,
            tls_key: None,
            memory_limit_mb: default_memory(),
            timeout_seconds: default_timeout(),
            max_concurrent_statements: default_concurrent(),
            max_login_failures: default_failures(),
            lockout_seconds: default_lockout(),
            token_ttl_seconds: default_token_ttl(),
            audit_log: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSection {
    tables: Vec<String>,
    #[serde(default)]
    unmasked: bool,
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserSection {
    name: String,
    role: String,
    scope: Option<String>,
    password_hash: Option<String>,
    token_sha256: Option<String>,
}

/// How a user proves who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An argon2 PHC string (`$argon2id$...`).
    Password(String),
    /// The hex SHA-256 of a bearer token (tokens are long random strings).
    Token(String),
}

/// A user of the server.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// What the user may see (the role, narrowed by the user's scope).
    pub policy: Policy,
    /// Password hash or token hash.
    pub credentials: Vec<Credential>,
}

/// TLS certificate and key (PEM).
#[derive(Debug, Clone)]
pub struct TlsPaths {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// The checked server configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// PostgreSQL listener, if enabled.
    pub postgres: Option<SocketAddr>,
    /// Flight SQL listener, if enabled.
    pub flight: Option<SocketAddr>,
    /// TLS for both listeners.
    pub tls: Option<TlsPaths>,
    /// Per-statement memory and time.
    pub limits: crate::catalog::QueryLimits,
    /// Statements running at once, over all connections.
    pub max_concurrent_statements: usize,
    /// Failed logins (per user and address) before a lockout.
    pub max_login_failures: u32,
    /// How long a lockout lasts.
    pub lockout: std::time::Duration,
    /// How long a Flight SQL bearer token stays valid.
    pub token_ttl: std::time::Duration,
    /// The statement log (default: `<workspace>/runs/audit.jsonl`).
    pub audit_log: Option<PathBuf>,
    /// Users by name.
    pub users: BTreeMap<String, User>,
}

/// The built-in roles: `planner` (registry and reports, masked), `auditor` (everything,
/// unmasked, statement log included) and `program_manager` (reports, masked).
pub fn builtin_role(name: &str) -> Option<Policy> {
    use TableGroup::*;
    let (groups, unmasked): (&[TableGroup], bool) = match name {
        "planner" => (&[Registry, Reports], false),
        "auditor" => (&[Registry, Reports, Staged, Operations, Audit], true),
        "program_manager" => (&[Reports], false),
        _ => return None,
    };
    Some(Policy {
        role: name.to_string(),
        groups: groups.iter().copied().collect(),
        unmasked,
        scope: None,
    })
}

impl ServeConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::Invalid(vec![Diagnostic::new(
                path,
                "",
                format!("cannot read the server config: {e}"),
            )])
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks `text` (read from `path`, named in messages).
    pub fn parse(text: &str, path: &Path) -> Result<ServeConfig, ConfigError> {
        let invalid = |problems: Vec<String>| {
            ConfigError::Invalid(
                problems
                    .into_iter()
                    .map(|p| Diagnostic::new(path, "", p))
                    .collect(),
            )
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        let server = &file.server;
        let address = |text: &Option<String>, what: &str, problems: &mut Vec<String>| {
            text.as_ref().and_then(|t| match t.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    problems.push(format!(
                        "[server] {what} = '{t}' is not an address like 127.0.0.1:5433"
                    ));
                    None
                }
            })
        };
        let postgres = address(&server.postgres, "postgres", &mut problems);
        let flight = address(&server.flight, "flight", &mut problems);
        let tls = match (&server.tls_cert, &server.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let cert = base.join(cert);
                let key = base.join(key);
                for (what, p) in [("tls_cert", &cert), ("tls_key", &key)] {
                    if !p.is_file() {
                        problems.push(format!("[server] {what}: no file at {}", p.display()));
                    }
                }
                Some(TlsPaths { cert, key })
            }
            _ => {
                problems.push("[server] tls_cert and tls_key go together: set both".into());
                None
            }
        };
        for (key, value) in [
            ("timeout_seconds", server.timeout_seconds),
            ("memory_limit_mb", server.memory_limit_mb as u64),
            ("max_login_failures", u64::from(server.max_login_failures)),
            ("token_ttl_seconds", server.token_ttl_seconds),
        ] {
            if value == 0 {
                problems.push(format!("[server] {key} must be at least 1"));
            }
        }
        if server.max_concurrent_statements == 0 {
            problems.push("[server] max_concurrent_statements must be at least 1".into());
        }
        let mut roles: BTreeMap<String, Policy> = ["planner", "auditor", "program_manager"]
            .into_iter()
            .filter_map(|n| builtin_role(n).map(|p| (n.to_string(), p)))
            .collect();
        for (name, role) in &file.roles {
            if roles.contains_key(name) && builtin_role(name).is_some() {
                problems.push(format!(
                    "[roles.{name}]: '{name}' is a built-in role; give yours another name"
                ));
                continue;
            }
            let scope = match role.scope.as_deref().map(RegionScope::parse).transpose() {
                Ok(scope) => scope,
                Err(e) => {
                    problems.push(format!("[roles.{name}]: {e}"));
                    None
                }
            };
            if role.tables.is_empty() {
                problems.push(format!(
                    "[roles.{name}]: tables is empty; the role would see nothing"
                ));
            }
            let mut groups = BTreeSet::new();
            for table in &role.tables {
                match TableGroup::parse(table) {
                    Some(group) => {
                        groups.insert(group);
                    }
                    None => problems.push(format!(
                        "[roles.{name}]: unknown table group '{}' (known: registry, reports, staged, operations, audit)",
                        crate::redact::escape_controls(table)
                    )),
                }
            }
            roles.insert(
                name.clone(),
                Policy {
                    role: name.clone(),
                    groups,
                    unmasked: role.unmasked,
                    scope,
                },
            );
        }
        let mut users = BTreeMap::new();
        for user in &file.users {
            let who = format!("user '{}'", crate::redact::escape_controls(&user.name));
            if user.name.is_empty() || user.name.chars().any(|c| c.is_control() || c == ':') {
                problems.push(format!("{who}: a name may not be empty or hold ':'"));
                continue;
            }
            let Some(role) = roles.get(&user.role) else {
                problems.push(format!(
                    "{who}: unknown role '{}' (built in: planner, auditor, program_manager; or declare [roles.{}])",
                    user.role, user.role
                ));
                continue;
            };
            let mut policy = role.clone();
            if let Some(text) = &user.scope {
                match RegionScope::parse(text) {
                    Ok(scope) => {
                        if let Some(wider) = &role.scope
                            && !scope.code().starts_with(wider.code())
                        {
                            problems.push(format!(
                                "{who}: scope {} is outside role {}'s scope {}",
                                scope.code(),
                                role.role,
                                wider.code()
                            ));
                        }
                        policy.scope = Some(scope);
                    }
                    Err(e) => problems.push(format!("{who}: {e}")),
                }
            }
            let mut credentials = Vec::new();
            if let Some(hash) = &user.password_hash {
                if argon2::PasswordHash::new(hash).is_err() || !hash.starts_with("$argon2") {
                    problems.push(format!(
                        "{who}: password_hash is not an argon2 hash; make one with `terpadu hash-password`"
                    ));
                }
                credentials.push(Credential::Password(hash.clone()));
            }
            if let Some(hash) = &user.token_sha256 {
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    problems.push(format!(
                        "{who}: token_sha256 must be 64 hex digits; make one with `terpadu hash-password --token`"
                    ));
                }
                credentials.push(Credential::Token(hash.to_ascii_lowercase()));
            }
            if credentials.is_empty() {
                problems.push(format!(
                    "{who}: no password_hash or token_sha256; plain-text passwords are never accepted"
                ));
            }
            if users.contains_key(&user.name) {
                problems.push(format!("{who} is declared twice"));
            }
            users.insert(
                user.name.clone(),
                User {
                    name: user.name.clone(),
                    policy,
                    credentials,
                },
            );
        }
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        Ok(ServeConfig {
            postgres,
            flight,
            tls,
            limits: crate::catalog::QueryLimits {
                memory_bytes: server.memory_limit_mb << 20,
                timeout: std::time::Duration::from_secs(server.timeout_seconds),
            },
            max_concurrent_statements: server.max_concurrent_statements,
            max_login_failures: server.max_login_failures,
            lockout: std::time::Duration::from_secs(server.lockout_seconds),
            token_ttl: std::time::Duration::from_secs(server.token_ttl_seconds),
            audit_log: server.audit_log.as_ref().map(|p| base.join(p)),
            users,
        })
    }
}

/// An argon2id hash of `password`, for `password_hash`.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// The hex SHA-256 of `token`, for `token_sha256`.
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeConfig, Vec<String>> {
        ServeConfig::parse(text, Path::new("serve.toml"))
            .map_err(|e| e.diagnostics().iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn users_get_their_role_and_scope() {
        let hash = hash_password("rahasia").unwrap();
        let config = parse(&format!(
            "[[users]]\nname = \"lebak\"\nrole = \"planner\"\nscope = \"36.02\"\npassword_hash = \"{hash}\"\n"
        ))
        .unwrap();
        let user = &config.users["lebak"];
        assert_eq!(user.policy.scope.as_ref().unwrap().code(), "3602");
        assert!(!user.policy.unmasked);
        assert_eq!(config.postgres.unwrap().port(), 5433);
    }

    #[test]
    fn every_problem_is_named() {
        let problems = parse(
            "[roles.planner]\ntables = [\"registry\"]\n\
             [roles.kab]\ntables = [\"registry\"]\nscope = \"3602\"\n\
             [[users]]\nname = \"a\"\nrole = \"nobody\"\npassword_hash = \"x\"\n\
             [[users]]\nname = \"b\"\nrole = \"planner\"\npassword_hash = \"plain\"\n\
             [[users]]\nname = \"c\"\nrole = \"kab\"\nscope = \"3601\"\ntoken_sha256 = \"abc\"\n\
             [[users]]\nname = \"d\"\nrole = \"planner\"\n",
        )
        .unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "built-in role",
            "unknown role 'nobody'",
            "user 'b': password_hash is not an argon2 hash",
            "outside role kab's scope 3602",
            "token_sha256 must be 64 hex digits",
            "user 'd': no password_hash",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
