//! `faas secret create|update|list|remove`: manage secrets.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use faas_core::model::Secret;

use crate::cli::GatewayArgs;
use crate::{Error, Result};

/// Arguments of `faas secret`.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// What to do with secrets.
    #[command(subcommand)]
    pub command: SecretCommand,
}

/// The `faas secret` subcommands.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum SecretCommand {
    /// Create a secret (value from --from-literal, --from-file, or stdin).
    Create(SecretValueArgs),
    /// Replace a secret's value.
    Update(SecretValueArgs),
    /// List the secrets' names.
    #[command(visible_alias = "ls")]
    List {
        /// Gateway options.
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// Remove a secret.
    #[command(visible_aliases = ["rm", "delete"])]
    Remove {
        /// Gateway options.
        #[command(flatten)]
        gateway: GatewayArgs,
        /// The secret.
        name: String,
    },
}

/// Arguments of `faas secret create` and `update`.
#[derive(Debug, Clone, Args)]
pub struct SecretValueArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The secret's name.
    pub name: String,
    /// The value, given on the command line.
    #[arg(long, conflicts_with = "from_file")]
    pub from_literal: Option<String>,
    /// Read the value from this file (binary values are kept as they are).
    #[arg(long)]
    pub from_file: Option<PathBuf>,
}

impl SecretValueArgs {
    /// The secret these arguments describe, reading the file or stdin as needed.
    ///
    /// # Errors
    /// [`Error::Io`] when the file or stdin cannot be read.
    pub fn secret(&self) -> Result<Secret> {
        let bytes = match (&self.from_literal, &self.from_file) {
            (Some(value), _) => value.clone().into_bytes(),
            (None, Some(path)) => std::fs::read(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?,
            (None, None) => {
                if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    eprintln!("reading the secret from stdin: end it with Ctrl-D");
                }
                let mut bytes = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io("reading the secret from stdin", e))?;
                bytes
            }
        };
        let mut secret = match String::from_utf8(bytes) {
            Ok(text) => Secret::new(&self.name, text),
            Err(e) => Secret {
                name: self.name.clone(),
                raw_value: e.into_bytes(),
                ..Default::default()
            },
        };
        secret.namespace = self.gateway.namespace().unwrap_or_default().to_owned();
        Ok(secret)
    }
}

/// Runs `faas secret ...`.
///
/// # Errors
/// When the gateway cannot be reached or answers an error (409 on create of an existing secret,
/// 404 on update or remove of a missing one).
pub async fn run(args: SecretArgs) -> Result<()> {
    match args.command {
        SecretCommand::Create(args) => {
            let secret = args.secret()?;
            args.gateway.client(None)?.create_secret(&secret).await?;
            super::print(&format!("created secret {}\n", secret.name))
        }
        SecretCommand::Update(args) => {
            let secret = args.secret()?;
            args.gateway.client(None)?.update_secret(&secret).await?;
            super::print(&format!("updated secret {}\n", secret.name))
        }
        SecretCommand::List { gateway } => {
            let mut secrets = gateway.client(None)?.secrets(gateway.namespace()).await?;
            secrets.sort_by(|a, b| a.name.cmp(&b.name));
            let rows: Vec<Vec<String>> = secrets
                .into_iter()
                .map(|s| vec![s.name, s.namespace])
                .collect();
            super::print(&super::table(&["Name", "Namespace"], &rows))
        }
        SecretCommand::Remove { gateway, name } => {
            gateway
                .client(None)?
                .remove_secret(&name, gateway.namespace())
                .await?;
            super::print(&format!("removed secret {name}\n"))
        }
    }
}
