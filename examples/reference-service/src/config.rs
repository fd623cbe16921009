//! The service's configuration, from environment variables, each with a default that works
//! against local servers.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything the service reads from its environment (besides the `OTEL_*` variables and
/// `RUST_LOG`, which [`seawall_telemetry::Config::from_env`] reads).
#[derive(Clone)]
pub struct Config {
    /// `LISTEN_ADDR`: where the HTTP server listens.
    pub listen_addr: SocketAddr,
    /// `DATABASE_URL`: the PostgreSQL connection string.
    pub database_url: String,
    /// `REDIS_URL`: the Redis URL.
    pub redis_url: String,
    /// `DB_POOL_MAX`: PostgreSQL connections at most (and the database's concurrency limit).
    pub db_pool_max: usize,
    /// `DB_POOL_WAIT_MS`: how long a call waits for a free connection (or a limiter permit).
    pub db_pool_wait: Duration,
    /// `REQUEST_TIMEOUT_MS`: each request's deadline; a client may lower it with the
    /// `X-Request-Timeout-Ms` header.
    pub request_timeout: Duration,
    /// `DB_TIMEOUT_MS`: the bound on one database attempt (a query, or a connection).
    pub db_timeout: Duration,
    /// `REDIS_TIMEOUT_MS`: the bound on one Redis attempt.
    pub redis_timeout: Duration,
    /// `CACHE_TTL_S`: how long a cached item lives in Redis.
    pub cache_ttl: Duration,
    /// `STALE_TTL_S`: how long Redis keeps a stale copy of an item, answered (marked
    /// `X-Cache: stale`) when PostgreSQL cannot answer a read; zero keeps none.
    pub stale_ttl: Duration,
    /// `SHUTDOWN_GRACE_MS`: how long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// `ADMIN_TOKEN`: the bearer token of the admin endpoints; `None` turns them off.
    pub admin_token: Option<String>,
    /// `FLEET_RATE_LIMIT`: calls a second to PostgreSQL across every instance sharing
    /// `REDIS_URL` and `FLEET_NAME`; `None` (unset or 0) for no fleet-wide rate.
    pub fleet_rate_limit: Option<u32>,
    /// `FLEET_DB_CONCURRENCY`: PostgreSQL calls in flight across every instance; `None`
    /// (unset or 0) for no fleet-wide budget.
    pub fleet_db_concurrency: Option<u32>,
    /// `FLEET_REPLICAS`: the instances expected to share the fleet-wide limits; while Redis
    /// does not answer, each enforces its share (the limit divided by this).
    pub fleet_replicas: u32,
    /// `FLEET_NAME`: the name the fleet-wide limits share on Redis.
    pub fleet_name: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The effective configuration, one `NAME=value` per line, with secrets redacted: the
/// password of either URL and the admin token never appear.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_millis();
        writeln!(f, "LISTEN_ADDR={}", self.listen_addr)?;
        writeln!(f, "DATABASE_URL={}", redact_url(&self.database_url))?;
        writeln!(f, "REDIS_URL={}", redact_url(&self.redis_url))?;
        writeln!(f, "DB_POOL_MAX={}", self.db_pool_max)?;
        writeln!(f, "DB_POOL_WAIT_MS={}", ms(self.db_pool_wait))?;
        writeln!(f, "REQUEST_TIMEOUT_MS={}", ms(self.request_timeout))?;
        writeln!(f, "DB_TIMEOUT_MS={}", ms(self.db_timeout))?;
        writeln!(f, "REDIS_TIMEOUT_MS={}", ms(self.redis_timeout))?;
        writeln!(f, "CACHE_TTL_S={}", self.cache_ttl.as_secs())?;
        writeln!(f, "STALE_TTL_S={}", self.stale_ttl.as_secs())?;
        writeln!(
            f,
            "FLEET_RATE_LIMIT={}",
            self.fleet_rate_limit.unwrap_or_default()
        )?;
        writeln!(
            f,
            "FLEET_DB_CONCURRENCY={}",
            self.fleet_db_concurrency.unwrap_or_default()
        )?;
        writeln!(f, "FLEET_REPLICAS={}", self.fleet_replicas)?;
        writeln!(f, "FLEET_NAME={}", self.fleet_name)?;
        writeln!(f, "SHUTDOWN_GRACE_MS={}", ms(self.shutdown_grace))?;
        let admin = if self.admin_token.is_some() {
            "(set: admin endpoints on)"
        } else {
            "(unset: admin endpoints off)"
        };
        write!(f, "ADMIN_TOKEN={admin}")
    }
}

/// A variable with a value the service cannot use: which one, what is wrong, what is
/// expected. The value itself is shown only for variables that hold no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// What is wrong with the value, including the value where it is not secret.
    pub problem: String,
    /// The form a valid value takes.
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: {} {} (expected {})",
            self.variable, self.problem, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

const MAX_MS: u64 = 3_600_000;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (a map, in tests). An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let listen_addr = match get("LISTEN_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(value) => value.trim().parse().map_err(|_| ConfigError {
                variable: "LISTEN_ADDR",
                problem: format!("is `{value}`, not an IP address and port"),
                expected: "host:port with a numeric IP address, such as 127.0.0.1:8080 or [::1]:8080",
            })?,
        };
        let database_url = get("DATABASE_URL")
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        if let Err(problem) = check_database_url(&database_url) {
            return Err(ConfigError {
                variable: "DATABASE_URL",
                problem,
                expected: "postgres://user[:password]@host[:port]/database",
            });
        }
        let redis_url = get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());
        if let Err(problem) = check_redis_url(&redis_url) {
            return Err(ConfigError {
                variable: "REDIS_URL",
                problem,
                expected: "redis://[:password@]host[:port][/database]",
            });
        }
        let number = |name: &'static str, default: u64, min: u64, max: u64, expected| {
            let Some(value) = get(name) else {
                return Ok(default);
            };
            match value.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                Ok(n) => Err(ConfigError {
                    variable: name,
                    problem: format!("is {n}, out of range"),
                    expected,
                }),
                Err(_) => Err(ConfigError {
                    variable: name,
                    problem: format!("is `{value}`, not a whole number"),
                    expected,
                }),
            }
        };
        let db_pool_max = number("DB_POOL_MAX", 16, 1, 1024, "an integer from 1 to 1024")?;
        let db_pool_wait = number(
            "DB_POOL_WAIT_MS",
            1000,
            0,
            MAX_MS,
            "milliseconds, from 0 to 3600000",
        )?;
        let request_timeout = number(
            "REQUEST_TIMEOUT_MS",
            5000,
            1,
            MAX_MS,
            "milliseconds, from 1 to 3600000",
        )?;
        let db_timeout = number(
            "DB_TIMEOUT_MS",
            2000,
            1,
            MAX_MS,
            "milliseconds, from 1 to 3600000",
        )?;
        let redis_timeout = number(
            "REDIS_TIMEOUT_MS",
            250,
            1,
            MAX_MS,
            "milliseconds, from 1 to 3600000",
        )?;
        let cache_ttl = number(
            "CACHE_TTL_S",
            300,
            1,
            30 * 86_400,
            "seconds, from 1 to 2592000 (30 days)",
        )?;
        let stale_ttl = number(
            "STALE_TTL_S",
            86_400,
            0,
            30 * 86_400,
            "seconds, from 0 (no stale copies) to 2592000 (30 days)",
        )?;
        if stale_ttl != 0 && stale_ttl < cache_ttl {
            return Err(ConfigError {
                variable: "STALE_TTL_S",
                problem: format!(
                    "is {stale_ttl}, shorter than CACHE_TTL_S={cache_ttl}: the stale copy would be gone before the fresh one"
                ),
                expected: "0, or at least CACHE_TTL_S",
            });
        }
        let shutdown_grace = number(
            "SHUTDOWN_GRACE_MS",
            10_000,
            0,
            MAX_MS,
            "milliseconds, from 0 to 3600000",
        )?;
        for (name, value) in [
            ("DB_TIMEOUT_MS", db_timeout),
            ("REDIS_TIMEOUT_MS", redis_timeout),
        ] {
            if value > request_timeout {
                return Err(ConfigError {
                    variable: name,
                    problem: format!(
                        "is {value}, longer than the whole request (REQUEST_TIMEOUT_MS={request_timeout})"
                    ),
                    expected: "at most REQUEST_TIMEOUT_MS",
                });
            }
        }
        let fleet_rate_limit = number(
            "FLEET_RATE_LIMIT",
            0,
            0,
            1_000_000,
            "calls a second, from 1 to 1000000, or 0 for none",
        )?;
        let fleet_db_concurrency = number(
            "FLEET_DB_CONCURRENCY",
            0,
            0,
            100_000,
            "calls in flight, from 1 to 100000, or 0 for none",
        )?;
        let fleet_replicas = number("FLEET_REPLICAS", 2, 1, 1_000, "instances, from 1 to 1000")?;
        let fleet_name = get("FLEET_NAME").unwrap_or_else(|| "seawall-service".to_owned());
        if fleet_name.is_empty()
            || fleet_name.len() > 100
            || !fleet_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError {
                variable: "FLEET_NAME",
                problem: format!("is `{fleet_name}`"),
                expected: "1 to 100 letters, digits, `-` or `_`",
            });
        }
        let admin_token = match get("ADMIN_TOKEN") {
            None => None,
            Some(token) if token.len() < 16 => {
                return Err(ConfigError {
                    variable: "ADMIN_TOKEN",
                    problem: format!(
                        "is {} characters long, too short to guess-proof",
                        token.len()
                    ),
                    expected: "at least 16 visible ASCII characters, or unset to turn admin off",
                });
            }
            Some(token) if !token.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(ConfigError {
                    variable: "ADMIN_TOKEN",
                    problem: "holds spaces, control or non-ASCII characters".to_owned(),
                    expected: "at least 16 visible ASCII characters, or unset to turn admin off",
                });
            }
            Some(token) => Some(token),
        };
        let config = Config {
            listen_addr,
            database_url,
            redis_url,
            db_pool_max: usize::try_from(db_pool_max).unwrap_or(1024),
            db_pool_wait: Duration::from_millis(db_pool_wait),
            request_timeout: Duration::from_millis(request_timeout),
            db_timeout: Duration::from_millis(db_timeout),
            redis_timeout: Duration::from_millis(redis_timeout),
            cache_ttl: Duration::from_secs(cache_ttl),
            stale_ttl: Duration::from_secs(stale_ttl),
            shutdown_grace: Duration::from_millis(shutdown_grace),
            admin_token,
            fleet_rate_limit: u32::try_from(fleet_rate_limit).ok().filter(|&n| n > 0),
            fleet_db_concurrency: u32::try_from(fleet_db_concurrency).ok().filter(|&n| n > 0),
            fleet_replicas: u32::try_from(fleet_replicas).unwrap_or(1),
            fleet_name,
        };
        config.check_pipelines()?;
        Ok(config)
    }

    /// Builds both pipelines from this configuration, as the service will: a setting they
    /// refuse is refused here, naming the variable it came from, rather than passing this
    /// check and stopping the service at start. The builders' checks are the only ones.
    fn check_pipelines(&self) -> Result<(), ConfigError> {
        let refused = |error: seawall::ConfigError, variable: &'static str| ConfigError {
            variable,
            problem: format!("is refused by the pipeline: {error}"),
            expected: "a value the pipeline accepts",
        };
        crate::deps::db_pipeline(self).build().map_err(|error| {
            let variable = match error.field() {
                "max_wait" | "queue" => "DB_POOL_WAIT_MS",
                "deadline" => "REQUEST_TIMEOUT_MS",
                "max" | "limit" | "max_concurrency" => "DB_POOL_MAX",
                _ => "DB_TIMEOUT_MS",
            };
            refused(error, variable)
        })?;
        crate::deps::cache_pipeline(self)
            .build()
            .map_err(|error| refused(error, "REDIS_TIMEOUT_MS"))?;
        Ok(())
    }

    /// The PostgreSQL settings, with this configuration's connect timeout.
    pub fn postgres(&self) -> tokio_postgres::Config {
        let mut config: tokio_postgres::Config = self
            .database_url
            .parse()
            .expect("DATABASE_URL was checked when the configuration was read");
        config.connect_timeout(self.db_timeout);
        config.application_name("seawall-example-service");
        config
    }
}

fn check_database_url(url: &str) -> Result<(), String> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|_| "is not a PostgreSQL connection string".to_owned())?;
    let tcp = config
        .get_hosts()
        .iter()
        .any(|host| matches!(host, tokio_postgres::config::Host::Tcp(_)));
    if !tcp {
        return Err("names no TCP host".to_owned());
    }
    Ok(())
}

fn check_redis_url(url: &str) -> Result<(), String> {
    redis::Client::open(url)
        .map(drop)
        .map_err(|_| "is not a Redis URL".to_owned())
}

/// `url` with any password replaced by `****`: both URL forms
/// (`postgres://user:secret@host/db`) and key-value forms (`host=h password=secret`).
#[must_use]
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{user}:****")
            } else {
                user.to_owned()
            };
            let query = redact_query(&rest[authority_end..]);
            return format!(
                "{}{shown}@{}{query}",
                &url[..scheme_end + 3],
                &authority[at + 1..]
            );
        }
        return format!(
            "{}{}",
            &url[..scheme_end + 3 + authority_end],
            redact_query(&rest[authority_end..])
        );
    }
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=****"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn redact_query(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=****"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_work_locally() {
        let config = read(&[]).unwrap();
        assert_eq!(config.listen_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.db_pool_max, 16);
        assert_eq!(config.request_timeout, Duration::from_secs(5));
        assert_eq!(config.admin_token, None);
        assert_eq!(config.postgres().get_user(), Some("postgres"));
    }

    #[test]
    fn each_bad_value_names_its_variable_and_the_expected_form() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "LISTEN_ADDR",
                "localhost",
                "is `localhost`, not an IP address and port",
            ),
            (
                "DATABASE_URL",
                "mysql://x",
                "is not a PostgreSQL connection string",
            ),
            ("REDIS_URL", "http://x", "is not a Redis URL"),
            ("DB_POOL_MAX", "0", "is 0, out of range"),
            ("DB_POOL_MAX", "many", "is `many`, not a whole number"),
            ("DB_POOL_WAIT_MS", "-1", "is `-1`, not a whole number"),
            ("REQUEST_TIMEOUT_MS", "0", "is 0, out of range"),
            ("CACHE_TTL_S", "1.5", "is `1.5`, not a whole number"),
            (
                "SHUTDOWN_GRACE_MS",
                "99999999999",
                "is 99999999999, out of range",
            ),
            (
                "ADMIN_TOKEN",
                "short",
                "is 5 characters long, too short to guess-proof",
            ),
            ("FLEET_RATE_LIMIT", "-5", "is `-5`, not a whole number"),
            ("FLEET_DB_CONCURRENCY", "100001", "is 100001, out of range"),
            ("FLEET_REPLICAS", "0", "is 0, out of range"),
            ("FLEET_NAME", "a b", "is `a b`"),
        ];
        for (variable, value, problem) in cases {
            let error = read(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, *variable);
            assert_eq!(error.problem, *problem, "{variable}={value}");
            let line = error.to_string();
            assert!(line.starts_with(&format!("invalid configuration: {variable} ")));
            assert!(line.contains("(expected "), "{line}");
            assert!(!line.contains('\n'), "one line: {line}");
        }
        for (variable, value) in [("REDIS_TIMEOUT_MS", "10"), ("DB_POOL_WAIT_MS", "0")] {
            let error = read(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{variable}={value}: {error}");
            assert!(
                error.problem.starts_with("is refused by the pipeline: "),
                "{error}"
            );
        }
        let error = read(&[("REQUEST_TIMEOUT_MS", "100"), ("DB_TIMEOUT_MS", "200")]).unwrap_err();
        assert_eq!(error.variable, "DB_TIMEOUT_MS");
        let error = read(&[("CACHE_TTL_S", "600"), ("STALE_TTL_S", "60")]).unwrap_err();
        assert_eq!(error.variable, "STALE_TTL_S");
        assert!(
            error.problem.contains("shorter than CACHE_TTL_S=600"),
            "{error}"
        );
        let none = read(&[("STALE_TTL_S", "0")]).unwrap();
        assert!(none.stale_ttl.is_zero());
    }

    #[test]
    fn fleet_limits_are_off_unless_set() {
        let default = read(&[]).unwrap();
        assert_eq!(default.fleet_rate_limit, None);
        assert_eq!(default.fleet_db_concurrency, None);
        let set = read(&[
            ("FLEET_RATE_LIMIT", "200"),
            ("FLEET_DB_CONCURRENCY", "40"),
            ("FLEET_REPLICAS", "4"),
        ])
        .unwrap();
        assert_eq!(set.fleet_rate_limit, Some(200));
        assert_eq!(set.fleet_db_concurrency, Some(40));
        assert_eq!(set.fleet_replicas, 4);
        assert!(set.to_string().contains("FLEET_RATE_LIMIT=200\n"));
        let zero = read(&[("FLEET_RATE_LIMIT", "0")]).unwrap();
        assert_eq!(zero.fleet_rate_limit, None, "0 is off");
    }

    #[test]
    fn secrets_are_never_shown() {
        let secret = "s3cr3t-pa55word";
        let token = "admin-token-0123456789";
        let config = read(&[
            (
                "DATABASE_URL",
                &format!("postgres://app:{secret}@127.0.0.1:5432/app"),
            ),
            ("REDIS_URL", &format!("redis://:{secret}@127.0.0.1:6379/0")),
            ("ADMIN_TOKEN", token),
        ])
        .unwrap();
        let shown = format!("{config}\n{config:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains(token), "{shown}");
        assert!(shown.contains("DATABASE_URL=postgres://app:****@127.0.0.1:5432/app"));
        assert!(shown.contains("REDIS_URL=redis://:****@127.0.0.1:6379/0"));
        // A bad URL's value is not echoed: it may hold a password.
        let error = read(&[("DATABASE_URL", &format!("mysql://u:{secret}@h/db"))]).unwrap_err();
        assert!(!error.to_string().contains(secret));
    }

    #[test]
    fn redaction_covers_every_form() {
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=p"),
            "postgres://h/db?user=u&password=****"
        );
        assert_eq!(
            redact_url("host=h user=u password=p dbname=d"),
            "host=h user=u password=**** dbname=d"
        );
        assert_eq!(redact_url("redis://:p@h:1/"), "redis://:****@h:1/");
    }
}
