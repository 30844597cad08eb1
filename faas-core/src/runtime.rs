//! The Tokio runtime of the faas-rs binaries (`faas`, `fwatchdog`): a thread count from an
//! environment variable, else the binary's default.

/// Builds the runtime with the thread count in environment variable `variable` when it is set
/// (a positive integer), else `default` (`None`: one worker per CPU). One thread gives a
/// current-thread runtime, more a multi-thread one.
///
/// ```
/// let runtime = faas_core::runtime::build("MY_APP_THREADS", Some(1)).unwrap();
/// assert_eq!(runtime.block_on(async { 1 + 1 }), 2);
/// ```
///
/// # Errors
/// A message naming the variable when its value is not a positive integer, or the runtime
/// cannot start.
pub fn build(variable: &str, default: Option<usize>) -> Result<tokio::runtime::Runtime, String> {
    let threads = match std::env::var(variable) {
        Ok(v) if !v.trim().is_empty() => Some(
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("invalid {variable}={v:?}: expected a positive integer"))?,
        ),
        _ => default,
    };
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
