//! The durable store: deployed functions and secrets as small files under the data directory.
//!
//! ```text
//! <data>/functions/<namespace>/<name>/function.json   the deployment, its replica count, createdAt
//! <data>/functions/<namespace>/<name>/secrets/<s>     links to the secrets the function uses
//! <data>/secrets/<namespace>/<s>                      secret values (mode 0600)
//! ```
//!
//! Every file is written atomically (temporary file, fsync, rename, fsync of the directory), so a
//! crash leaves either the old or the new version, never a torn one. Callers serialize writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use faas_core::model::FunctionDeployment;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const FUNCTION_FILE: &str = "function.json";

/// One deployed function as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredFunction {
    /// The deployment, its namespace set.
    pub(crate) deployment: FunctionDeployment,
    /// The desired replica count.
    pub(crate) replicas: u32,
    /// When it was first deployed.
    pub(crate) created_at: DateTime<Utc>,
}

/// The data directory, locked (`flock` on `<data>/lock`) for as long as the store lives, so that
/// two providers never run the same functions from one directory.
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
    _lock: nix::fcntl::Flock<File>,
}

impl Store {
    /// Opens (creating it when missing) the store under `root`.
    pub(crate) fn open(root: &Path) -> Result<Store> {
        create_dir(root)?;
        let lock_path = root.join("lock");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::store("open", &lock_path, e))?;
        let lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        {
            Ok(lock) => lock,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(Error::Locked {
                    path: root.to_owned(),
                });
            }
            Err((_, errno)) => return Err(Error::store("lock", lock_path, errno.into())),
        };
        let store = Store {
            root: root.to_owned(),
            _lock: lock,
        };
        create_dir(&store.root.join("functions"))?;
        create_dir(&store.root.join("secrets"))?;
        Ok(store)
    }

    /// The directory of one function (its record and its secrets view).
    pub(crate) fn function_dir(&self, namespace: &str, name: &str) -> PathBuf {
        self.root.join("functions").join(namespace).join(name)
    }

    /// The directory the function reads its secrets from (`secret_mount_path`).
    pub(crate) fn secrets_view(&self, namespace: &str, name: &str) -> PathBuf {
        self.function_dir(namespace, name).join("secrets")
    }

    fn secret_path(&self, namespace: &str, name: &str) -> PathBuf {
        self.root.join("secrets").join(namespace).join(name)
    }

    /// Writes a function's record.
    pub(crate) fn save_function(&self, f: &StoredFunction) -> Result<()> {
        let namespace = f.deployment.namespace.as_deref().unwrap_or_default();
        let dir = self.function_dir(namespace, &f.deployment.service);
        create_dir(&dir)?;
        let bytes = serde_json::to_vec_pretty(f).map_err(|source| Error::Corrupt {
            path: dir.join(FUNCTION_FILE),
            source,
        })?;
        write_atomic(&dir.join(FUNCTION_FILE), &bytes, 0o600)
    }

    /// Removes a function's record and its directory.
    pub(crate) fn delete_function(&self, namespace: &str, name: &str) -> Result<()> {
        let dir = self.function_dir(namespace, name);
        let record = dir.join(FUNCTION_FILE);
        match fs::remove_file(&record) {
            Ok(()) => sync_dir(&dir)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store("remove", record, e)),
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::store("remove", dir, e)),
        }
    }

    /// Every stored function. A directory without a record (a delete that was interrupted) is
    /// removed; a record that cannot be decoded is an error.
    pub(crate) fn load_functions(&self) -> Result<Vec<StoredFunction>> {
        let mut functions = Vec::new();
        for namespace in list_dir(&self.root.join("functions"))? {
            let ns_dir = self.root.join("functions").join(&namespace);
            for name in list_dir(&ns_dir)? {
                let dir = ns_dir.join(&name);
                let valid = faas_core::validate::Namespace::new(namespace.as_str()).is_ok()
                    && faas_core::validate::FunctionName::new(name.as_str()).is_ok();
                if !valid {
                    tracing::warn!(dir = %dir.display(), "ignoring a directory that does not name a function");
                    continue;
                }
                let record = dir.join(FUNCTION_FILE);
                let bytes = match fs::read(&record) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        tracing::warn!(dir = %dir.display(), "removing a function directory without a record");
                        let _ = fs::remove_dir_all(&dir);
                        continue;
                    }
                    Err(e) => return Err(Error::store("read", record, e)),
                };
                let mut f: StoredFunction =
                    serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt {
                        path: record.clone(),
                        source,
                    })?;
                f.deployment.namespace = Some(namespace.clone());
                f.deployment.service = name;
                functions.push(f);
            }
        }
        Ok(functions)
    }

    /// Points a function's secrets view at the secrets it names (dangling for secrets that do not
    /// exist yet; they appear when created).
    pub(crate) fn link_secrets(
        &self,
        namespace: &str,
        name: &str,
        secrets: &[String],
    ) -> Result<PathBuf> {
        let view = self.secrets_view(namespace, name);
        create_dir(&view)?;
        // Replace links one by one (a new link renamed over the old one), so that replicas still
        // running read their secrets without a gap.
        for secret in secrets {
            let target = self.secret_path(namespace, secret);
            let link = view.join(secret);
            let tmp = view.join(format!(".{secret}.tmp"));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&target, &tmp)
                .and_then(|()| fs::rename(&tmp, &link))
                .map_err(|e| Error::store("link", &link, e))?;
        }
        for entry in list_dir(&view)? {
            if !secrets.contains(&entry) {
                let path = view.join(&entry);
                fs::remove_file(&path).map_err(|e| Error::store("remove", path, e))?;
            }
        }
        Ok(view)
    }

    /// Whether a secret exists.
    pub(crate) fn secret_exists(&self, namespace: &str, name: &str) -> bool {
        self.secret_path(namespace, name).is_file()
    }

    /// Writes a secret's value.
    pub(crate) fn write_secret(&self, namespace: &str, name: &str, value: &[u8]) -> Result<()> {
        let path = self.secret_path(namespace, name);
        create_dir(path.parent().unwrap_or(&self.root))?;
        write_atomic(&path, value, 0o600)
    }

    /// Removes a secret; false when it did not exist.
    pub(crate) fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool> {
        let path = self.secret_path(namespace, name);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(path.parent().unwrap_or(&self.root))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::store("remove", path, e)),
        }
    }

    /// The names of a namespace's secrets, sorted.
    pub(crate) fn list_secrets(&self, namespace: &str) -> Result<Vec<String>> {
        let mut names = list_dir(&self.root.join("secrets").join(namespace))?;
        names.sort();
        Ok(names)
    }

    /// Namespaces holding at least one secret.
    pub(crate) fn secret_namespaces(&self) -> Result<Vec<String>> {
        let mut namespaces = Vec::new();
        for ns in list_dir(&self.root.join("secrets"))? {
            if !self.list_secrets(&ns)?.is_empty() {
                namespaces.push(ns);
            }
        }
        Ok(namespaces)
    }
}

/// The entries of a directory, skipping hidden files (temporary files start with a dot); empty
/// when the directory does not exist.
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::store("read directory", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::store("read directory", dir, e))?;
        if let Ok(name) = entry.file_name().into_string()
            && !name.starts_with('.')
        {
            names.push(name);
        }
    }
    Ok(names)
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::store("create directory", dir, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::store("sync", dir, e))
}

/// Writes `bytes` to `path` so that readers see the old or the new content, never a mix, even
/// after a crash: a temporary file in the same directory, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().ok_or_else(|| {
        Error::store(
            "write",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"),
        )
    })?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::store("write", path, e));
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, ns: &str) -> StoredFunction {
        StoredFunction {
            deployment: FunctionDeployment::new(name, "img")
                .with_env_process("cat")
                .with_namespace(ns),
            replicas: 2,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn functions_round_trip_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save_function(&record("a", "ns1")).unwrap();
        store.save_function(&record("b", "ns2")).unwrap();
        let mut again = record("a", "ns1");
        again.replicas = 3;
        store.save_function(&again).unwrap();

        assert!(matches!(Store::open(dir.path()), Err(Error::Locked { .. })));
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        let mut loaded = reopened.load_functions().unwrap();
        loaded.sort_by(|x, y| x.deployment.service.cmp(&y.deployment.service));
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0], again);
        assert_eq!(loaded[1].deployment.namespace.as_deref(), Some("ns2"));

        reopened.delete_function("ns1", "a").unwrap();
        assert!(!reopened.function_dir("ns1", "a").exists());
        assert_eq!(reopened.load_functions().unwrap().len(), 1);
        // deleting twice is harmless
        reopened.delete_function("ns1", "a").unwrap();
    }

    #[test]
    fn a_directory_without_record_is_cleaned_and_a_corrupt_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::create_dir_all(store.function_dir("ns", "half")).unwrap();
        fs::create_dir_all(store.function_dir("ns", "Not_A_Function")).unwrap();
        assert!(store.load_functions().unwrap().is_empty());
        assert!(!store.function_dir("ns", "half").exists());
        assert!(
            store.function_dir("ns", "Not_A_Function").exists(),
            "left alone"
        );

        fs::create_dir_all(store.function_dir("ns", "bad")).unwrap();
        fs::write(
            store.function_dir("ns", "bad").join(FUNCTION_FILE),
            b"{not json",
        )
        .unwrap();
        assert!(matches!(store.load_functions(), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn secrets_are_private_files_seen_through_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.write_secret("ns", "api-key", b"one").unwrap();
        let mode = fs::metadata(store.secret_path("ns", "api-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.secret_exists("ns", "api-key"));
        assert_eq!(
            store.list_secrets("ns").unwrap(),
            vec!["api-key".to_owned()]
        );
        assert_eq!(store.secret_namespaces().unwrap(), vec!["ns".to_owned()]);

        let view = store
            .link_secrets("ns", "fn", &["api-key".to_owned(), "later".to_owned()])
            .unwrap();
        assert_eq!(fs::read(view.join("api-key")).unwrap(), b"one");
        store.write_secret("ns", "api-key", b"two").unwrap();
        assert_eq!(fs::read(view.join("api-key")).unwrap(), b"two");
        assert!(fs::read(view.join("later")).is_err());
        store.write_secret("ns", "later", b"now").unwrap();
        assert_eq!(fs::read(view.join("later")).unwrap(), b"now");
        // relinking keeps what is still used and drops the rest
        store
            .link_secrets("ns", "fn", &["later".to_owned()])
            .unwrap();
        assert_eq!(list_dir(&view).unwrap(), vec!["later".to_owned()]);
        assert_eq!(fs::read(view.join("later")).unwrap(), b"now");

        assert!(store.delete_secret("ns", "api-key").unwrap());
        assert!(!store.delete_secret("ns", "api-key").unwrap());
        assert_eq!(store.list_secrets("ns").unwrap(), vec!["later".to_owned()]);
        assert!(store.list_secrets("other").unwrap().is_empty());
    }
}
