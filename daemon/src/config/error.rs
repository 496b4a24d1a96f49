//! Config errors: each one says where (file, line, column, JSON pointer) and what.

use std::fmt;
use std::path::PathBuf;

/// One problem in the config file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no place in the file (it cannot be read).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// JSON pointer of the value at fault, such as `/checks/2/schedule`; empty
    /// for the whole document.
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `path:line:col: /pointer: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.pointer.is_empty() {
            write!(f, ": {}", self.pointer)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// How many errors are shown (printed, kept as the last reload error,
/// answered by the API); the rest are counted. A broken file of thousands of
/// checks would otherwise print, store and send megabytes of text that nobody
/// reads past the first screen.
pub const SHOWN_ERRORS: usize = 200;

/// Every problem found in one config file, in the order of the file: the
/// first [`SHOWN_ERRORS`] kept, the rest counted in `more`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors {
    pub shown: Vec<ConfigError>,
    /// Errors found past the first [`SHOWN_ERRORS`].
    pub more: usize,
}

impl ConfigErrors {
    /// One error.
    pub fn one(error: ConfigError) -> Self {
        Self {
            shown: vec![error],
            more: 0,
        }
    }

    /// Every error found: `len() == shown.len() + more`.
    pub fn len(&self) -> usize {
        self.shown.len() + self.more
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The errors shown.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.shown.iter()
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line, then how many more there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.shown.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.more > 0 {
            write!(
                f,
                "\n... and {} more errors ({} in all; the first {} are shown)",
                self.more,
                self.len(),
                self.shown.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.shown.iter()
    }
}
