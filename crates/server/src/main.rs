use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cdvault_server::cli::Cli::parse();
    match cdvault_server::cli::run(cli).await {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            // The whole chain, once, on stderr (where the log goes too).
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
