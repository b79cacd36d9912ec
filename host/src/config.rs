//! Settings shared by every subcommand, from flags and `PUSHRAIL_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite database and the generated master key file.
    #[arg(
        long,
        env = "PUSHRAIL_DATA_DIR",
        default_value = "pushrail-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// PostgreSQL URL; when set, used instead of the embedded SQLite database.
    #[arg(long, env = "PUSHRAIL_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[arg(long, env = "PUSHRAIL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory of plugin components (`*.wasm`).
    #[arg(long, env = "PUSHRAIL_PLUGINS_DIR", default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,

    /// Where compiled plugins are cached (default: `plugin-cache` in the data dir).
    #[arg(long, env = "PUSHRAIL_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Delays before each attempt; after the last, a delivery is `failed`.
    #[arg(
        long,
        env = "PUSHRAIL_RETRY_SCHEDULE",
        default_value = "0s,5s,5m,30m,2h,5h,10h,10h",
        value_parser = parse_schedule
    )]
    pub retry_schedule: RetrySchedule,

    /// Opens an address range that the egress policy refuses by default (repeatable).
    #[arg(long, env = "PUSHRAIL_ALLOW_EGRESS", value_delimiter = ',')]
    pub allow_egress: Vec<ipnet::IpNet>,

    /// Most events handed to one plugin call (capped by the plugin's own maximum).
    #[arg(long, env = "PUSHRAIL_BATCH_SIZE", default_value_t = 100)]
    pub batch_size: usize,

    /// How long the dispatcher waits after being woken, so that events published together are
    /// delivered together.
    #[arg(long, env = "PUSHRAIL_BATCH_LINGER", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub batch_linger: Duration,

    /// Plugin calls in flight at once.
    #[arg(long, env = "PUSHRAIL_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,

    /// On SIGTERM or SIGINT, how long calls in flight may take to finish before the process exits
    /// (what is still running then is left to its lease).
    #[arg(long, env = "PUSHRAIL_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Batches of one destination in flight at once, so one destination cannot take every slot.
    #[arg(long, env = "PUSHRAIL_DESTINATION_CONCURRENCY", default_value_t = 4)]
    pub destination_concurrency: usize,

    /// Plugin calls the API makes for its own answers (test events, config checks) at once,
    /// apart from the delivery engine's.
    #[arg(long, env = "PUSHRAIL_API_PLUGIN_CALLS", default_value_t = 8)]
    pub api_plugin_calls: usize,

    /// Warm plugin sessions kept between batches (each holds one destination's connections).
    #[arg(long, env = "PUSHRAIL_WARM_SESSIONS", default_value_t = 256)]
    pub warm_sessions: usize,

    /// A warm session unused this long is closed.
    #[arg(long, env = "PUSHRAIL_SESSION_IDLE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub session_idle: Duration,

    /// Wall-clock limit of one plugin call.
    #[arg(long, env = "PUSHRAIL_PLUGIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub plugin_timeout: Duration,

    /// Memory limit of one plugin instance, in MiB.
    #[arg(long, env = "PUSHRAIL_PLUGIN_MEMORY_MIB", default_value_t = 64)]
    pub plugin_memory_mib: usize,

    /// Lease on claimed work; a worker that has not answered by then is presumed dead.
    #[arg(long, env = "PUSHRAIL_LEASE", default_value = "120s", value_parser = humantime::parse_duration)]
    pub lease: Duration,

    /// Requests per second each tenant may make (ingest and embed API alike); bursts of twice that.
    #[arg(long, env = "PUSHRAIL_RATE_LIMIT", default_value_t = 2000)]
    pub rate_limit: u32,

    /// A destination whose every batch has failed for this long is disabled, with the reason
    /// shown to the customer; its queued deliveries pause until it is enabled again.
    #[arg(long, env = "PUSHRAIL_AUTO_DISABLE_AFTER", default_value = "5d", value_parser = humantime::parse_duration)]
    pub auto_disable_after: Duration,

    /// After this many batches in a row delivered nothing, a destination's circuit opens: its
    /// queued deliveries wait, and one delivery at a time probes it on the retry schedule; one
    /// success closes the circuit. 0 turns circuit breaking off.
    #[arg(long, env = "PUSHRAIL_CIRCUIT_AFTER", default_value_t = 10)]
    pub circuit_after: u32,

    #[command(flatten)]
    pub aws: AwsOperatorArgs,

    /// How often the dispatcher looks for due work when nothing wakes it.
    #[arg(long, env = "PUSHRAIL_POLL_INTERVAL", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
}

/// The deployment's own AWS identity, with which it assumes customers' roles (credential kind
/// `aws_role`). Without it, `aws_role` credentials are refused. Prefer the variables to the flags:
/// flags show in the process list.
#[derive(Clone, Args)]
pub struct AwsOperatorArgs {
    /// The deployment's AWS access key id.
    #[arg(long, env = "PUSHRAIL_AWS_ACCESS_KEY_ID", requires_all = ["aws_secret_access_key", "aws_account_id"])]
    pub aws_access_key_id: Option<String>,

    /// Its secret access key.
    #[arg(long, env = "PUSHRAIL_AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,

    /// Its session token, when the deployment's keys are temporary themselves.
    #[arg(long, env = "PUSHRAIL_AWS_SESSION_TOKEN", hide_env_values = true)]
    pub aws_session_token: Option<String>,

    /// The deployment's AWS account id, which customers' trust policies name as principal.
    #[arg(long, env = "PUSHRAIL_AWS_ACCOUNT_ID", value_parser = parse_account_id)]
    pub aws_account_id: Option<String>,

    /// The region STS is called in.
    #[arg(long, env = "PUSHRAIL_AWS_REGION", default_value = "us-east-1")]
    pub aws_region: String,

    /// STS's base URL, for private endpoints and local peers (default: the regional endpoint).
    #[arg(long, env = "PUSHRAIL_AWS_STS_ENDPOINT")]
    pub aws_sts_endpoint: Option<url::Url>,
}

impl std::fmt::Debug for AwsOperatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsOperatorArgs")
            .field("aws_access_key_id", &self.aws_access_key_id)
            .field("aws_account_id", &self.aws_account_id)
            .field("aws_region", &self.aws_region)
            .field("aws_sts_endpoint", &self.aws_sts_endpoint)
            .finish_non_exhaustive()
    }
}

fn parse_account_id(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err("an AWS account id is 12 digits".into())
    }
}

impl AwsOperatorArgs {
    /// The operator identity, when one is configured.
    pub fn operator(&self) -> Option<crate::aws_roles::Operator> {
        let (Some(key), Some(secret), Some(account)) = (
            &self.aws_access_key_id,
            &self.aws_secret_access_key,
            &self.aws_account_id,
        ) else {
            return None;
        };
        Some(crate::aws_roles::Operator {
            access_key_id: key.clone(),
            secret_access_key: crate::vault::SecretString::new(secret.clone()),
            session_token: self
                .aws_session_token
                .clone()
                .filter(|t| !t.is_empty())
                .map(crate::vault::SecretString::new),
            account_id: account.clone(),
            region: self.aws_region.clone(),
            sts_endpoint: self.aws_sts_endpoint.clone(),
        })
    }
}

/// The delays before attempt 1, 2, ... of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

fn parse_schedule(text: &str) -> Result<RetrySchedule, String> {
    let delays = text
        .split(',')
        .map(|part| humantime::parse_duration(part.trim()).map_err(|e| format!("{part:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err("the schedule needs at least one entry".into());
    }
    Ok(RetrySchedule(delays))
}

impl RetrySchedule {
    /// The delay before attempt `n + 1` after `n` attempts, or `None` when attempts are used up.
    pub fn delay_after(&self, attempts_made: usize) -> Option<Duration> {
        self.0.get(attempts_made).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_schedule() {
        let schedule = parse_schedule("0s,5s,5m,30m,2h,5h,10h,10h").unwrap();
        assert_eq!(schedule.0.len(), 8);
        assert_eq!(schedule.delay_after(1), Some(Duration::from_secs(5)));
        assert_eq!(schedule.delay_after(3), Some(Duration::from_secs(1800)));
        assert_eq!(schedule.delay_after(8), None);
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse_schedule("5s,soon").is_err());
    }
}
