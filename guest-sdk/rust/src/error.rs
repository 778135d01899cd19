//! Errors and the FailureDetails JSON of ABI section 8.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A failure as it travels between host and guest (ABI section 8).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FailureDetails {
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Failure type, e.g. "ActivityError", "Nondeterminism".
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub error_type: String,
    /// Stable code set by the host, e.g. "DW1001".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    /// Stack trace text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stack: String,
    /// Where the failure happened (filled in by the host).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The failure that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<Box<FailureDetails>>,
}

impl fmt::Display for FailureDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error_type.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.error_type, self.message)
        }
    }
}

/// What went wrong, for matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An error of the application (an orchestrator or activity returned it).
    Application,
    /// An activity or sub-orchestration failed (after all retries).
    TaskFailed,
    /// A wait with a timeout timed out.
    Timeout,
    /// A value could not be encoded to or decoded from JSON.
    Json,
    /// A host function returned an error code.
    Host(i64),
    /// The host aborted the orchestration (nondeterminism, limit, invalid
    /// JSON): it must stop at once.
    Aborted,
}

/// The error type of orchestrators, activities and tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    kind: ErrorKind,
    details: FailureDetails,
    non_retryable: bool,
}

/// The result type of orchestrators, activities and tasks.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An application error with the given message (reported with type
    /// "OrchestratorError" or "ActivityError").
    pub fn msg(message: impl fmt::Display) -> Error {
        Error::with_type("", message)
    }

    /// An application error with a failure type of your own, which callers
    /// (and retry handlers) can match with [`Error::error_type`].
    pub fn with_type(error_type: &str, message: impl fmt::Display) -> Error {
        Error {
            kind: ErrorKind::Application,
            details: FailureDetails { message: message.to_string(), error_type: error_type.to_string(), ..Default::default() },
            non_retryable: false,
        }
    }

    /// Marks the error as not worth retrying: a retry policy stops at once
    /// when an activity fails with it. (Travels as the failure type suffix
    /// "NonRetryable" in FailureDetails.type.)
    pub fn non_retryable(mut self) -> Error {
        self.non_retryable = true;
        if !self.details.error_type.ends_with(NON_RETRYABLE) {
            self.details.error_type.push_str(NON_RETRYABLE);
        }
        self
    }

    pub(crate) fn new(kind: ErrorKind, error_type: &str, message: impl fmt::Display) -> Error {
        let mut e = Error::with_type(error_type, message);
        e.kind = kind;
        e
    }

    pub(crate) fn host(func: &str, c: i64) -> Error {
        let kind = if code_aborts(c) { ErrorKind::Aborted } else { ErrorKind::Host(c) };
        Error::new(kind, "HostError", format!("host function {} failed with code {} ({})", func, c, crate::host::code::name(c)))
    }

    pub(crate) fn json(what: &str, e: serde_json::Error) -> Error {
        Error::new(ErrorKind::Json, "JsonError", format!("{}: {}", what, e))
    }

    pub(crate) fn task_failed(what: &str, details: FailureDetails) -> Error {
        let non_retryable = details.error_type.ends_with(NON_RETRYABLE);
        Error {
            kind: ErrorKind::TaskFailed,
            details: FailureDetails {
                message: format!("{} failed: {}", what, details),
                error_type: "TaskFailed".into(),
                inner: Some(Box::new(details)),
                ..Default::default()
            },
            non_retryable,
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.details.message
    }

    /// The failure type: for a failed task, the type the activity or
    /// sub-orchestration failed with (e.g. "InsufficientFunds"); otherwise
    /// the error's own type.
    pub fn error_type(&self) -> &str {
        match (&self.kind, &self.details.inner) {
            (ErrorKind::TaskFailed, Some(inner)) => &inner.error_type,
            _ => &self.details.error_type,
        }
    }

    /// Whether this is the timeout of a wait with a timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Whether a retry policy must not retry it.
    pub fn is_non_retryable(&self) -> bool {
        self.non_retryable
    }

    /// The FailureDetails this error is reported as.
    pub fn details(&self) -> &FailureDetails {
        &self.details
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.details).unwrap_or_else(|_| b"{\"message\":\"unencodable error\"}".to_vec())
    }
}

const NON_RETRYABLE: &str = "NonRetryable";

fn code_aborts(c: i64) -> bool {
    crate::host::code::aborts(c)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.details.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::json("JSON", e)
    }
}

impl From<String> for Error {
    fn from(s: String) -> Error {
        Error::msg(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error::msg(s)
    }
}
