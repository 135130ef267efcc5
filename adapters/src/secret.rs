//! Tokens and signing secrets: read from a file named in the config or from
//! an environment variable, and never shown in logs or debug output.

use std::fmt;
use std::path::Path;

/// A secret string whose `Debug` output is masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Reads a secret from `file` when given, else from the environment
/// variable `env`. Surrounding whitespace (a trailing newline in a mounted
/// file) is removed. The error names where the secret was looked for, never
/// its value.
pub fn load(env: &str, file: Option<&Path>) -> Result<Secret, String> {
    let value = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {env} from {}: {error}", path.display()))?,
        None => std::env::var(env).map_err(|_| {
            format!("{env} is not set; set it or name a file holding it in the config")
        })?,
    };
    let value = value.trim();
    if value.is_empty() {
        let source = file.map_or_else(|| env.to_string(), |p| p.display().to_string());
        return Err(format!("{env} is empty (read from {source})"));
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_the_value() {
        let secret = Secret::new("xoxb-123");
        assert_eq!(format!("{secret:?}"), "Secret(****)");
    }

    #[test]
    fn load_reads_and_trims_a_file() {
        let dir = std::env::temp_dir().join(format!("scalebot-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "xoxb-abc\n").unwrap();
        let secret = load("SCALEBOT_TEST_UNSET_TOKEN", Some(&path)).unwrap();
        assert_eq!(secret.expose(), "xoxb-abc");
        std::fs::write(&path, "  \n").unwrap();
        let error = load("SCALEBOT_TEST_UNSET_TOKEN", Some(&path)).unwrap_err();
        assert!(error.contains("is empty"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_names_the_missing_variable() {
        let error = load("SCALEBOT_TEST_UNSET_TOKEN", None).unwrap_err();
        assert!(
            error.contains("SCALEBOT_TEST_UNSET_TOKEN is not set"),
            "{error}"
        );
    }
}
