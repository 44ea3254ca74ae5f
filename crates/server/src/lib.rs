//! The `cdvault` binary's library: configuration, telemetry, start-up and the CLI commands, so that tests can boot
//! the real service in-process.

pub mod cli;
pub mod config;
pub mod startup;
pub mod telemetry;

pub use startup::Application;
