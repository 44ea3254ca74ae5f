//! Runs the fake Cdiscount marketplace as a standalone process, for demos and manual testing.

use std::net::SocketAddr;
use std::process::ExitCode;

use cdvault_fake_marketplace::FakeMarketplace;
use clap::Parser;

/// A `NAME:SECRET` pair from the command line; no Debug so the secret can't leak into logs.
#[derive(Clone)]
struct Credential {
    name: String,
    secret: String,
}

/// Splits on the first ':' so secrets may themselves contain colons.
fn parse_credential(value: &str) -> Result<Credential, String> {
    match value.split_once(':') {
        Some((name, secret)) if !name.is_empty() && !secret.is_empty() => {
            Ok(Credential { name: name.to_owned(), secret: secret.to_owned() })
        }
        _ => Err("expected NAME:SECRET with both parts non-empty".to_owned()),
    }
}

/// A fake Cdiscount STS and Octopia auth server, for tests and demos (never the real Cdiscount).
#[derive(Parser)]
#[command(name = "cdvault-fake-marketplace", version, about)]
struct Args {
    /// Address to listen on; must be a loopback address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,

    /// A seller API account the STS accepts (repeatable), e.g. `bestshop-api:s3cret`.
    #[arg(long = "api-account", value_name = "LOGIN-api:PASSWORD", value_parser = parse_credential)]
    api_accounts: Vec<Credential>,

    /// An Octopia client the token endpoint accepts (repeatable).
    #[arg(long = "octopia-client", value_name = "CLIENT_ID:SECRET", value_parser = parse_credential)]
    octopia_clients: Vec<Credential>,

    /// `expires_in` of issued Octopia tokens, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = cdvault_fake_marketplace::DEFAULT_OCTOPIA_EXPIRES_IN)]
    octopia_expires_in: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // The fake accepts whatever credentials it was given: exposing it beyond this machine would be a trap.
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "cdvault-fake-marketplace: refusing to listen on {}: only loopback addresses (127.0.0.1, ::1) are allowed",
            args.listen
        );
        return ExitCode::from(2);
    }
    let fake = match FakeMarketplace::start_on(args.listen).await {
        Ok(fake) => fake,
        Err(err) => {
            eprintln!("cdvault-fake-marketplace: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    fake.set_octopia_expires_in(args.octopia_expires_in);
    for account in &args.api_accounts {
        fake.add_api_account(&account.name, &account.secret);
    }
    for client in &args.octopia_clients {
        fake.add_octopia_client(&client.name, &client.secret);
    }

    let base = fake.base_url();
    println!("fake Cdiscount marketplace on {base} (for tests and demos; not the real Cdiscount)");
    println!("  export CDVAULT_CDISCOUNT_STS_URL={base}");
    println!("  export CDVAULT_OCTOPIA_AUTH_URL={base}");
    // Names only: the secrets were given on the command line and must not be echoed back.
    println!("  api accounts: {}", names_or_none(&args.api_accounts));
    println!("  octopia clients: {}", names_or_none(&args.octopia_clients));
    println!("  call counters: {base}{}", cdvault_fake_marketplace::CALLS_PATH);

    shutdown_signal().await;
    println!("stopping fake marketplace");
    fake.stop().await;
    ExitCode::SUCCESS
}

fn names_or_none(credentials: &[Credential]) -> String {
    if credentials.is_empty() {
        "(none: every login is rejected)".to_owned()
    } else {
        credentials.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Waits for Ctrl-C or, on Unix, SIGTERM (how process supervisors and `docker stop` ask us to quit).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            eprintln!("cdvault-fake-marketplace: cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                eprintln!("cdvault-fake-marketplace: cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
