//! The command line: `serve`, `migrate`, `schema`, `config-reference`, `error-reference`, `token`,
//! `audit verify | archive`,
//! `keys status | rotate | retire`, `access grant | grants | revoke-grant`, `freeze`, `unfreeze`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use cdvault_api::auth::{TokenRequest, mint_hs256};
use cdvault_storage::Database;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::config::{ServeConfig, Settings};

mod access;
mod acts;
mod archive;
mod audit;
mod freeze;
use crate::startup::{Application, shutdown_signal};

/// cdvault: a credential vault for Cdiscount / Octopia marketplace sellers, served over GraphQL.
#[derive(Debug, Parser)]
#[command(name = "cdvault", version)]
pub struct Cli {
    /// An optional TOML file of settings (keys as the environment variables without `CDVAULT_`, in lower case,
    /// e.g. `database_url`). Environment variables win over it.
    #[arg(long, global = true, env = "CDVAULT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the service (migrates the database first). With nothing configured: the development set-up.
    Serve,
    /// Applies pending database migrations and exits.
    Migrate,
    /// Prints the GraphQL schema (SDL).
    Schema,
    /// Prints the configuration reference (Markdown): every setting, its meaning and default.
    ConfigReference,
    /// Prints the error reference (Markdown): every `extensions.code`, what it means, its HTTP status.
    ErrorReference,
    /// Mints a JWT with the configured HS256 secret and prints only the token.
    Token(TokenArgs),
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Freezes the vault: every operation that returns a secret answers FROZEN on every replica (within a second)
    /// until `cdvault unfreeze`. Needs the root key (the act commits with its audit event).
    Freeze {
        /// Why (recorded with the freeze and in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Lifts the freeze. Needs the root key.
    Unfreeze,
    /// The encryption keyring.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Access grants: who (tokens of an issuer) may do what on which sellers.
    Access {
        #[command(subcommand)]
        command: access::AccessCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Lists every keyring version with its state and census (ciphertexts sealed under it, per table). Reads the
    /// database only: no root key needed.
    Status,
    /// Makes a new keyring version active and starts the rewrap job; the running servers' workers do the rewrap.
    /// Needs the root key. Exit status 1 when a job is already running.
    Rotate,
    /// Retires a DECRYPT_ONLY version once no ciphertext uses it (its material is destroyed). Needs the root key
    /// (the act commits with its keyed audit event). Exit status 1 when refused.
    Retire {
        /// The keyring version to retire.
        version: i32,
    },
    /// Re-wraps the keyring from the configured root key to a new one, in one transaction. Stop the servers first;
    /// then start them with the new key (see the runbook). Exit status 1 when refused.
    RotateRoot {
        /// A file holding the new root key (32 bytes, base64), as `CDVAULT_ROOT_KEY_FILE` would.
        #[arg(long)]
        new_root_key_file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The subject (`sub`): who the token is for, e.g. `erp-connector`.
    #[arg(long)]
    pub sub: String,
    /// Space-separated scopes, e.g. "credentials:read audit:read".
    #[arg(long, default_value = "")]
    pub scope: String,
    /// Comma-separated seller logins the token reaches, or `*` for all. Absent: no seller.
    #[arg(long)]
    pub sellers: Option<String>,
    /// Lifetime, e.g. `15m`, `24h`, `7d` (at most 90 days).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walks the chain (SHA-256 links before audit record v2, keyed links since), compares it with the head and
    /// with the checkpoints given, and names the first problem. Needs the root key. Exit status 1 when broken.
    Verify {
        /// Checkpoint files (JSON lines, one file per replica; other lines are skipped), e.g. the log a collector
        /// shipped off the host. Without them a deleted tail with the head moved back cannot be seen.
        #[arg(long, num_args = 1..)]
        checkpoints: Vec<PathBuf>,
        /// Archive files written by `cdvault audit archive`, in any order: each is checked (links, trailer seal),
        /// they must chain from one to the next and onto the live table's first retained event. Without them the
        /// archived events are not checked (the live table's sealed anchor still is).
        #[arg(long, num_args = 1..)]
        archive: Vec<PathBuf>,
    },
    /// Moves the events that happened before a time out of the live table into an archive file (JSON lines: a
    /// header, one line per event, a trailer sealed with the audit MAC key). The file is written and synced first,
    /// then the events are deleted in one transaction; after a crash in between, run the same command again to
    /// finish. Needs the root key. Exit status 1 when refused or when the chain is broken.
    Archive {
        /// Events that happened before this time are archived (RFC 3339, e.g. `2026-01-01T00:00:00Z`).
        #[arg(long, value_parser = parse_rfc3339)]
        before: time::OffsetDateTime,
        /// The archive file to write. Never replaced: an existing complete archive is committed (or reported as
        /// done), anything else is refused.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Parses an RFC 3339 time, e.g. `2026-01-01T00:00:00Z`.
fn parse_rfc3339(raw: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("'{raw}' is not an RFC 3339 time like 2026-01-01T00:00:00Z ({e})"))
}

/// Parses `30s`, `15m`, `24h`, `7d`.
pub fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = digits.parse().map_err(|_| format!("'{raw}' is not a duration like 15m or 24h"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{raw}' is not a duration like 15m or 24h (units s, m, h, d)")),
    };
    let secs = n.saturating_mul(unit_secs);
    if secs == 0 || secs > 90 * 86_400 {
        return Err(format!("'{raw}': a token lives between 1 second and 90 days"));
    }
    Ok(Duration::from_secs(secs))
}

/// Runs a parsed command. Returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    // The schema and the references describe the code, not this installation: they read no configuration.
    match cli.command {
        Command::Schema => {
            print!("{}", cdvault_api::sdl());
            return Ok(0);
        }
        Command::ConfigReference => {
            print!("{}", crate::config::reference_markdown());
            return Ok(0);
        }
        Command::ErrorReference => {
            print!("{}", cdvault_api::error::reference_markdown());
            return Ok(0);
        }
        _ => {}
    }
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Schema | Command::ConfigReference | Command::ErrorReference => Ok(0),
        Command::Serve => {
            let telemetry = crate::telemetry::init(&settings.log_filter, &settings.telemetry)?;
            let config = ServeConfig::from_settings(&settings)?;
            let app = Application::build(config).await?;
            app.run_until(shutdown_signal()).await?;
            // The last spans (the shutdown's among them) leave before the process does.
            telemetry.shutdown();
            Ok(0)
        }
        Command::Migrate => {
            let _telemetry = crate::telemetry::init(&settings.log_filter, &settings.telemetry)?;
            if let Some(needed) = settings.development_files() {
                crate::config::create_data_dir(needed.data_dir)?;
            }
            let db = Database::connect(&settings.database_url()).await.context("cannot open the database")?;
            db.migrate().await.context("cannot migrate the database")?;
            tracing::info!("migrations applied");
            Ok(0)
        }
        Command::Token(args) => {
            if settings.jwt_algorithm != jsonwebtoken::Algorithm::HS256 {
                anyhow::bail!(
                    "cdvault token mints HS256 tokens only, but CDVAULT_JWT_ALGORITHM is {:?}: mint with your identity provider",
                    settings.jwt_algorithm
                );
            }
            let secret = settings.hs256_secret()?;
            let request = TokenRequest {
                subject: args.sub,
                scopes: args.scope.split_ascii_whitespace().map(str::to_owned).collect(),
                sellers: args
                    .sellers
                    .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()),
                ttl: args.ttl,
            };
            let token = mint_hs256(secret.expose_secret(), settings.jwt_issuer()?, settings.jwt_audience()?, &request)?;
            println!("{token}");
            Ok(0)
        }
        Command::Keys { command: KeysCommand::Status } => {
            let db = Database::connect(&settings.existing_database_url()?).await.context("cannot open the database")?;
            let census = cdvault_storage::keyring::census(&db).await.context("cannot read the keyring")?;
            println!("{:>7}  {:<12}  {:>11}  {:<25}  per table", "version", "state", "ciphertexts", "created");
            for key in &census {
                let state = key.state.map_or("UNKNOWN", |s| s.as_str());
                let created = key.created_at.format(&time::format_description::well_known::Rfc3339)?;
                let tables: Vec<String> = key.ciphertexts.iter().map(|c| format!("{}={}", c.table, c.count)).collect();
                println!("{:>7}  {state:<12}  {:>11}  {created:<25}  {}", key.version, key.total(), tables.join(" "));
            }
            Ok(0)
        }
        Command::Keys { command: KeysCommand::Rotate } => acts::rotate(&settings).await,
        Command::Keys { command: KeysCommand::RotateRoot { new_root_key_file } } => {
            acts::rotate_root(&settings, &new_root_key_file).await
        }
        Command::Keys { command: KeysCommand::Retire { version } } => acts::retire(&settings, version).await,
        Command::Audit { command: AuditCommand::Verify { checkpoints, archive } } => {
            audit::verify(&settings, checkpoints, archive).await
        }
        Command::Audit { command: AuditCommand::Archive { before, out } } => {
            archive::archive(&settings, before, out).await
        }
        Command::Access { command } => access::run(&settings, command).await,
        Command::Freeze { reason } => freeze::freeze(&settings, &reason).await,
        Command::Unfreeze => freeze::unfreeze(&settings).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_ttl("15").is_err());
        assert!(parse_ttl("0m").is_err());
        assert!(parse_ttl("100d").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("999999999999999999d").is_err());
    }
}
