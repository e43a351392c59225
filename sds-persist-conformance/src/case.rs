//! What a case receives ([`Ctx`]) and returns ([`CaseResult`]).

use std::fmt::{self, Debug, Display};
use std::sync::{Arc, Mutex, PoisonError};

use crate::harness::{Capability, Harness, HarnessError};

/// How a case ends when it does not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseError {
    /// The backend broke the contract: what was expected and what was found.
    Failed(String),
    /// The case could not run: it needs a capability declared absent.
    NotRun(Missing),
}

/// A capability a case needs and its harness (or backend) declares absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The capability's name, e.g. `raw-writes`.
    pub capability: String,
    /// The reason given where it was declared absent.
    pub reason: String,
}

impl Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "needs the {} capability, declared absent: {}",
            self.capability, self.reason
        )
    }
}

impl CaseError {
    /// A failure with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        CaseError::Failed(message.into())
    }

    /// "Not run": the case needs `capability`, declared absent for `reason`.
    pub fn not_run(capability: impl Into<String>, reason: impl Into<String>) -> Self {
        CaseError::NotRun(Missing {
            capability: capability.into(),
            reason: reason.into(),
        })
    }
}

impl Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Failed(message) => write!(f, "failed: {message}"),
            CaseError::NotRun(missing) => write!(f, "not run: {missing}"),
        }
    }
}

impl std::error::Error for CaseError {}

/// What every case returns: `Ok(())` when the backend did what the case proves.
pub type CaseResult = Result<(), CaseError>;

/// Adds "what was being done" to an unexpected error, turning it into a case failure.
pub trait Context<T> {
    /// Maps an error to [`CaseError::Failed`] naming the step that failed.
    fn context(self, step: impl Display) -> Result<T, CaseError>;
}

impl<T, E: std::error::Error> Context<T> for Result<T, E> {
    fn context(self, step: impl Display) -> Result<T, CaseError> {
        self.map_err(|err| CaseError::Failed(format!("{step}: unexpected error: {}", chain(&err))))
    }
}

/// An error and its sources, joined with ": ".
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

/// Fails with "`what`: expected … found …" unless `expected == found`.
pub fn ensure_eq<T: PartialEq + Debug>(what: impl Display, expected: &T, found: &T) -> CaseResult {
    if expected == found {
        Ok(())
    } else {
        Err(CaseError::Failed(format!(
            "{what}: expected {}, found {}",
            brief(expected),
            brief(found)
        )))
    }
}

/// Fails with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> CaseResult {
    if condition {
        Ok(())
    } else {
        Err(CaseError::Failed(message()))
    }
}

/// A value's debug form, shortened so a failure message stays readable.
pub fn brief(value: &impl Debug) -> String {
    const LIMIT: usize = 600;
    let text = format!("{value:?}");
    if text.len() <= LIMIT {
        return text;
    }
    let mut cut = LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} chars in all)", &text[..cut], text.len())
}

/// One case's view of the harness: opens backends (remembering them for clean-up) and
/// turns missing capabilities into "not run".
pub struct Ctx<'h, H: Harness> {
    harness: &'h H,
    case: &'static str,
    opened: Mutex<Vec<Arc<H::Backend>>>,
}

impl<H: Harness> Debug for Ctx<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("harness", &self.harness.name())
            .field("case", &self.case)
            .finish_non_exhaustive()
    }
}

impl<'h, H: Harness> Ctx<'h, H> {
    /// A context for running `case` against `harness`.
    pub fn new(harness: &'h H, case: &'static str) -> Self {
        Ctx {
            harness,
            case,
            opened: Mutex::new(Vec::new()),
        }
    }

    /// The harness.
    pub fn harness(&self) -> &'h H {
        self.harness
    }

    /// The running case's name.
    pub fn case(&self) -> &'static str {
        self.case
    }

    /// "Not run" when the harness declares `capability` absent; `Ok` when it offers it.
    pub fn require(&self, capability: Capability) -> CaseResult {
        match self.harness.capabilities().absence(capability) {
            None => Ok(()),
            Some(reason) => Err(CaseError::not_run(capability.name(), reason)),
        }
    }

    fn remember(&self, backend: H::Backend) -> Arc<H::Backend> {
        let backend = Arc::new(backend);
        self.opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(backend.clone());
        backend
    }

    /// A fresh backend in its own namespace.
    pub async fn open(&self) -> Result<Arc<H::Backend>, CaseError> {
        let backend = self.harness.open().await.map_err(harness_failure("open"))?;
        Ok(self.remember(backend))
    }

    /// A backend on the same storage as `of`, in another fresh namespace.
    pub async fn sibling(&self, of: &H::Backend) -> Result<Arc<H::Backend>, CaseError> {
        let backend = self
            .harness
            .open_sibling(of)
            .await
            .map_err(harness_failure("open_sibling"))?;
        Ok(self.remember(backend))
    }

    /// A new instance on the storage and namespace of `of` (a restarted process).
    pub async fn reopen(&self, of: &H::Backend) -> Result<Arc<H::Backend>, CaseError> {
        let backend = self
            .harness
            .reopen(of)
            .await
            .map_err(harness_failure("reopen"))?;
        Ok(self.remember(backend))
    }

    /// A backend pointed at an unreachable server ([`Capability::Unreachable`]).
    pub async fn unreachable(&self) -> Result<Arc<H::Backend>, CaseError> {
        self.require(Capability::Unreachable)?;
        let backend = self
            .harness
            .open_unreachable()
            .await
            .map_err(harness_failure("open_unreachable"))?;
        // Not remembered: there is nothing to clean up on a server that cannot be reached.
        Ok(Arc::new(backend))
    }

    /// Writes raw snapshot bytes ([`Capability::RawWrites`]).
    pub async fn write_raw_meta(
        &self,
        backend: &H::Backend,
        channel: &str,
        bytes: &[u8],
    ) -> CaseResult {
        self.require(Capability::RawWrites)?;
        self.harness
            .write_raw_meta(backend, channel, bytes)
            .await
            .map_err(harness_failure("write_raw_meta"))
    }

    /// Writes raw history-row bytes ([`Capability::RawWrites`]).
    pub async fn write_raw_history_row(
        &self,
        backend: &H::Backend,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> CaseResult {
        self.require(Capability::RawWrites)?;
        self.harness
            .write_raw_history_row(backend, channel, lamport, message_id, bytes)
            .await
            .map_err(harness_failure("write_raw_history_row"))
    }

    /// Arms the mid-commit abort ([`Capability::AbortCommitAfterMeta`]).
    pub async fn abort_next_commit_after_meta(&self, backend: &H::Backend) -> CaseResult {
        self.require(Capability::AbortCommitAfterMeta)?;
        self.harness
            .abort_next_commit_after_meta(backend)
            .await
            .map_err(harness_failure("abort_next_commit_after_meta"))
    }

    /// Runs the harness clean-up on every backend this case opened; returns what failed.
    pub async fn cleanup(&self) -> Vec<String> {
        let opened =
            std::mem::take(&mut *self.opened.lock().unwrap_or_else(PoisonError::into_inner));
        let mut errors = Vec::new();
        for backend in opened {
            if let Err(err) = self.harness.cleanup(&backend).await {
                errors.push(chain(&err));
            }
        }
        errors
    }
}

fn harness_failure(step: &'static str) -> impl FnOnce(HarnessError) -> CaseError {
    move |err| match err {
        HarnessError::Unsupported(capability) => CaseError::Failed(format!(
            "harness {step}: the harness declares the {capability} capability but does not implement it"
        )),
        other => CaseError::Failed(format!("harness {step}: {}", chain(&other))),
    }
}
