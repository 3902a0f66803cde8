//! A mapping file's text and name, turning byte spans into `file:line:column` errors.

use super::error::LoadError;
use std::ops::Range;
use std::path::PathBuf;

/// One mapping file being loaded, and the errors found in it so far.
pub struct Source<'a> {
    /// The file's path (or embedded name).
    pub file: PathBuf,
    /// Its text.
    pub text: &'a str,
    /// Errors found.
    pub errors: Vec<LoadError>,
}

impl<'a> Source<'a> {
    /// Starts loading `text` from `file`.
    pub fn new(file: impl Into<PathBuf>, text: &'a str) -> Self {
        Source {
            file: file.into(),
            text,
            errors: Vec::new(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        (line, col)
    }

    /// 1-based line of a span's start.
    pub fn line(&self, span: &Range<usize>) -> usize {
        self.line_col(span.start).0
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: Range<usize>, rule: &'static str, message: impl Into<String>) {
        let (line, column) = self.line_col(span.start);
        self.errors.push(LoadError {
            file: self.file.clone(),
            line,
            column,
            rule,
            message: message.into(),
        });
    }

    /// Records an error about the file as a whole.
    pub fn file_error(&mut self, rule: &'static str, message: impl Into<String>) {
        self.errors.push(LoadError {
            file: self.file.clone(),
            line: 0,
            column: 0,
            rule,
            message: message.into(),
        });
    }

    /// Records a TOML syntax or shape error (it carries its own span).
    pub fn toml_error(&mut self, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_string();
        if span == (0..0) {
            self.file_error("toml", msg);
        } else {
            self.error(span, "toml", msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let s = Source::new("x.toml", "a = 1\nbb = 2\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(6), (2, 1));
        assert_eq!(s.line_col(8), (2, 3));
    }
}
