//! `cdvault access grant | grants | revoke-grant`: access grants managed by an operator at the command line. Each
//! write commits with its keyed audit event (actor `cli:<user>`); running servers apply it at their next poll.

use anyhow::Context;
use cdvault_api::service::grant_details;
use cdvault_domain::audit::AuditAction;
use cdvault_domain::grant::{Creator, Grant, GrantInput, GrantMatch, parse_grant_id};
use cdvault_domain::policy::SellerReach;
use cdvault_storage::{StorageError, grants};
use clap::Subcommand;
use time::OffsetDateTime;

use super::acts::{open_keyed, operator, record};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Grants scopes on sellers to tokens of an issuer, matched by exactly one of --subject, --client-id, --group,
    /// --service-account. Needs the root key (the grant commits with its audit event). Exit status 1 when refused.
    Grant(GrantArgs),
    /// Lists every access grant, oldest first. Needs the root key: a grant row written outside the vault (its MAC
    /// does not hold) is left out, as the servers leave it out.
    Grants,
    /// Deletes an access grant. Needs the root key. Exit status 1 when there is no such grant.
    RevokeGrant {
        /// The grant's id (a UUID, as `cdvault access grants` shows it).
        id: String,
    },
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("match").required(true).args(["subject", "client_id", "group", "service_account"])))]
pub struct GrantArgs {
    /// The issuer (`iss`) whose tokens the grant applies to, exactly as its tokens carry it.
    #[arg(long)]
    pub issuer: String,
    /// Match tokens whose `sub` is this.
    #[arg(long)]
    pub subject: Option<String>,
    /// Match tokens whose `client_id` or `azp` is this.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Match tokens whose `groups` hold this.
    #[arg(long)]
    pub group: Option<String>,
    /// Match a Kubernetes service account, as NAMESPACE/NAME.
    #[arg(long)]
    pub service_account: Option<String>,
    /// Space-separated scopes, e.g. "credentials:token audit:read".
    #[arg(long)]
    pub scope: String,
    /// Comma-separated seller logins, or `*` for all. Absent: no seller.
    #[arg(long, default_value = "")]
    pub sellers: String,
}

impl GrantArgs {
    fn parse(&self) -> Result<GrantInput, String> {
        let service_account = match &self.service_account {
            Some(raw) => Some(raw.split_once('/').ok_or("--service-account is NAMESPACE/NAME")?),
            None => None,
        };
        let matcher = GrantMatch::one_of(
            self.subject.as_deref(),
            self.client_id.as_deref(),
            self.group.as_deref(),
            service_account,
        )
        .map_err(|e| e.to_string())?;
        let scopes: Vec<String> = self.scope.split_ascii_whitespace().map(str::to_owned).collect();
        let sellers: Vec<String> =
            self.sellers.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        GrantInput::parse(&self.issuer, matcher, &scopes, &sellers).map_err(|e| e.to_string())
    }
}

/// One line of a grant: id, issuer, match, scopes, sellers, creator.
fn line(grant: &Grant) -> String {
    let scopes: Vec<&str> = grant.scopes.iter().map(|s| s.as_str()).collect();
    let sellers = match &grant.sellers {
        SellerReach::All => "*".to_owned(),
        SellerReach::Only(logins) if logins.is_empty() => "-".to_owned(),
        SellerReach::Only(logins) => logins.iter().cloned().collect::<Vec<_>>().join(","),
    };
    format!(
        "{}  {}  {}={}  scopes={}  sellers={}  by={}",
        grant.id,
        grant.issuer.as_str(),
        grant.matcher.kind(),
        grant.matcher.value(),
        scopes.join(","),
        sellers,
        grant.created_by.subject
    )
}

pub(super) async fn run(settings: &Settings, command: AccessCommand) -> anyhow::Result<i32> {
    match command {
        AccessCommand::Grant(args) => grant(settings, &args).await,
        AccessCommand::Grants => {
            let (db, _) = open_keyed(settings).await?;
            for grant in grants::list(&db).await.context("cannot read the access grants")? {
                println!("{}", line(&grant));
            }
            Ok(0)
        }
        AccessCommand::RevokeGrant { id } => {
            let id = match parse_grant_id("id", &id) {
                Ok(id) => id,
                Err(refused) => {
                    println!("refused: {refused}");
                    return Ok(1);
                }
            };
            let (db, _) = open_keyed(settings).await?;
            let who = operator();
            let event = |grant: &Grant| {
                let mut details = grant_details(grant);
                details["via"] = "cli".into();
                record(&who, AuditAction::AccessRevokeGrant, details)
            };
            match grants::delete(&db, id, event).await {
                Ok(grant) => {
                    println!("access grant deleted: {}", line(&grant));
                    Ok(0)
                }
                Err(StorageError::NotFound) => {
                    println!("refused: there is no access grant {id}");
                    Ok(1)
                }
                Err(e) => Err(e).context("cannot delete the access grant"),
            }
        }
    }
}

async fn grant(settings: &Settings, args: &GrantArgs) -> anyhow::Result<i32> {
    let input = match args.parse() {
        Ok(input) => input,
        Err(refused) => {
            println!("refused: {refused}");
            return Ok(1);
        }
    };
    let (db, _) = open_keyed(settings).await?;
    let who = operator();
    let creator = Creator { issuer: None, subject: who.clone() };
    let grant = input.into_new_grant(creator, OffsetDateTime::now_utc());
    let mut details = grant_details(&grant);
    details["via"] = "cli".into();
    let event = record(&who, AuditAction::AccessGrant, details);
    grants::create(&db, &grant, event).await.context("cannot create the access grant")?;
    println!("access grant created: {}", line(&grant));
    Ok(0)
}
