//! `faas remove NAME...`: remove functions, by name or those of a stack file.

use std::path::Path;

use clap::Args;

use crate::cli::{FunctionFilter, GatewayArgs, StackFileArgs};
use crate::{Error, Result};

/// Arguments of `faas remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The stack file whose functions to remove [default without NAMES: ./stack.yml or
    /// ./stack.yaml].
    #[command(flatten)]
    pub stack: StackFileArgs,
    /// With a stack file: which of its functions.
    #[command(flatten)]
    pub select: FunctionFilter,
    /// The functions to remove.
    pub names: Vec<String>,
}

impl RemoveArgs {
    /// The functions to remove and the stack file's gateway: the names given, and the (filtered)
    /// functions of the stack file (`-f`, else `stack.yml`/`stack.yaml` in `dir` when no name is
    /// given).
    ///
    /// # Errors
    /// [`Error::Stack`] for an invalid stack file, [`Error::InvalidArgument`] when there is nothing
    /// to remove or a filter selects nothing.
    pub fn targets_in(&self, dir: &Path) -> Result<(Vec<String>, Option<String>)> {
        let mut names = self.names.clone();
        let stack = if self.stack.file.is_some() || names.is_empty() {
            self.stack.load_or_default(dir)?
        } else {
            None
        };
        let mut gateway = None;
        match stack {
            Some((path, stack)) => {
                names.extend(
                    self.select
                        .select(stack.functions.keys().map(String::as_str), &path)?,
                );
                gateway = stack.provider.gateway;
            }
            None if self.select.is_set() => {
                return Err(Error::InvalidArgument(
                    "--filter and --regex select functions of a stack file: pass -f FILE".into(),
                ));
            }
            None => {}
        }
        if names.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "nothing to remove: name the functions, pass -f FILE, or run in a directory with {}",
                crate::cli::DEFAULT_STACK_FILES.join(" or ")
            )));
        }
        Ok((names, gateway))
    }
}

/// Runs `faas remove`.
///
/// # Errors
/// When the gateway cannot be reached, or a function does not exist (404).
pub async fn run(args: RemoveArgs) -> Result<()> {
    let (names, stack_gateway) = args.targets_in(Path::new("."))?;
    let client = args.gateway.client(stack_gateway.as_deref())?;
    let mut failed = 0;
    for name in &names {
        match client.remove(name, args.gateway.namespace()).await {
            Ok(()) => super::print(&format!("removed {name}\n"))?,
            Err(e @ (Error::Unreachable { .. } | Error::Unauthorized { .. })) => return Err(e),
            Err(e) if names.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("error: {}", e.one_line());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Error::InvalidArgument(format!(
            "{failed} of {} functions could not be removed",
            names.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        remove: RemoveArgs,
    }

    fn args(argv: &[&str]) -> RemoveArgs {
        let mut full = vec!["remove"];
        full.extend_from_slice(argv);
        Args::try_parse_from(full).unwrap().remove
    }

    #[test]
    fn names_and_stack_files_select_what_to_remove() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        std::fs::write(
            &stack,
            "provider:\n  gateway: http://gw:8080\nfunctions:\n  resize-gif:\n    image: x\n  \
             resize-png:\n    image: x\n  hello:\n    image: x\n",
        )
        .unwrap();
        let path = stack.to_str().unwrap();
        // names alone do not read the directory's stack file
        let (names, gateway) = args(&["a", "b"]).targets_in(dir.path()).unwrap();
        assert_eq!((names, gateway), (vec!["a".into(), "b".into()], None));
        // nothing named: the directory's stack file
        let (names, gateway) = args(&[]).targets_in(dir.path()).unwrap();
        assert_eq!(names, ["hello", "resize-gif", "resize-png"]);
        assert_eq!(gateway.as_deref(), Some("http://gw:8080"));
        let (names, _) = args(&["-f", path, "--filter", "*gif"])
            .targets_in(Path::new("/"))
            .unwrap();
        assert_eq!(names, ["resize-gif"]);
        let (names, _) = args(&["-f", path, "--regex", "png"])
            .targets_in(Path::new("/"))
            .unwrap();
        assert_eq!(names, ["resize-png"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(args(&[]).targets_in(empty.path()).is_err());
        assert!(args(&["--filter", "x"]).targets_in(empty.path()).is_err());
        assert!(
            args(&["-f", path, "--filter", "none*"])
                .targets_in(empty.path())
                .is_err()
        );
    }
}
