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
    Create(SecretCreateArgs),
    /// Replace a secret's value.
    Update(SecretValueArgs),
    /// List the secrets' names.
    #[command(visible_alias = "ls")]
    List {
        /// Gateway options.
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Print the gateway's JSON instead of a table.
        #[arg(short = 'j', long)]
        json: bool,
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
    /// Read the value from this file (kept byte for byte, --trim or not).
    #[arg(long)]
    pub from_file: Option<PathBuf>,
    /// Trim whitespace from both ends of a --from-literal or stdin value; --trim=false keeps it.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub trim: bool,
}

/// Arguments of `faas secret create`.
#[derive(Debug, Clone, Args)]
pub struct SecretCreateArgs {
    /// The secret and its value.
    #[command(flatten)]
    pub value: SecretValueArgs,
    /// Update the secret when it exists already.
    #[arg(long)]
    pub replace: bool,
}

impl SecretValueArgs {
    /// The secret these arguments describe, reading the file or stdin as needed.
    ///
    /// # Errors
    /// [`Error::Io`] when the file or stdin cannot be read, [`Error::InvalidArgument`] when the
    /// value is empty.
    pub fn secret(&self) -> Result<Secret> {
        self.secret_from(|| {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("reading the secret from stdin: end it with Ctrl-D");
            }
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io("reading the secret from stdin", e))?;
            Ok(bytes)
        })
    }

    /// [`SecretValueArgs::secret`], with `stdin` reading the standard input.
    fn secret_from(&self, stdin: impl FnOnce() -> Result<Vec<u8>>) -> Result<Secret> {
        let (mut bytes, trimmable) = match (&self.from_literal, &self.from_file) {
            (Some(value), _) => (value.clone().into_bytes(), true),
            (None, Some(path)) => (
                std::fs::read(path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?,
                false,
            ),
            (None, None) => (stdin()?, true),
        };
        if self.trim && trimmable {
            bytes = bytes.trim_ascii().to_vec();
        }
        if bytes.is_empty() {
            return Err(Error::InvalidArgument(
                "the secret is empty: give a value with --from-literal, --from-file or stdin"
                    .to_owned(),
            ));
        }
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
            let secret = args.value.secret()?;
            let client = args.value.gateway.client(None)?;
            match client.create_secret(&secret).await {
                Ok(()) => super::print(&format!("created secret {}\n", secret.name)),
                Err(Error::Status { status: 409, .. }) if args.replace => {
                    client.update_secret(&secret).await?;
                    super::print(&format!("updated secret {}\n", secret.name))
                }
                Err(e) => Err(e),
            }
        }
        SecretCommand::Update(args) => {
            let secret = args.secret()?;
            args.gateway.client(None)?.update_secret(&secret).await?;
            super::print(&format!("updated secret {}\n", secret.name))
        }
        SecretCommand::List { gateway, json } => {
            let mut secrets = gateway.client(None)?.secrets(gateway.namespace()).await?;
            secrets.sort_by(|a, b| a.name.cmp(&b.name));
            if json {
                let json = serde_json::to_string_pretty(&secrets).unwrap_or_default();
                return super::print(&format!("{json}\n"));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        secret: SecretCommand,
    }

    fn value_args(argv: &[&str]) -> SecretValueArgs {
        let mut full = vec!["faas", "update", "s"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().secret {
            SecretCommand::Update(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_are_trimmed_as_faas_cli_does() {
        let stdin = || Ok(b"  from stdin\n".to_vec());
        let value = |argv: &[&str]| {
            value_args(argv)
                .secret_from(stdin)
                .unwrap()
                .bytes()
                .to_vec()
        };
        assert_eq!(value(&[]), b"from stdin");
        assert_eq!(value(&["--trim=false"]), b"  from stdin\n");
        assert_eq!(value(&["--from-literal", " v "]), b"v");
        assert_eq!(value(&["--from-literal", " v ", "--trim=false"]), b" v ");
        // a file is sent byte for byte
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, b"\x00binary\n").unwrap();
        assert_eq!(
            value(&["--from-file", file.to_str().unwrap()]),
            b"\x00binary\n"
        );
        // nothing left: refused before the gateway is asked
        let err = value_args(&["--from-literal", "  "])
            .secret_from(stdin)
            .unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn create_replaces_only_when_asked() {
        let parse = |argv: &[&str]| {
            let mut full = vec!["faas", "create", "s", "--from-literal", "v"];
            full.extend_from_slice(argv);
            match Cli::try_parse_from(full).unwrap().secret {
                SecretCommand::Create(args) => args.replace,
                other => panic!("{other:?}"),
            }
        };
        assert!(!parse(&[]));
        assert!(parse(&["--replace"]));
    }
}
