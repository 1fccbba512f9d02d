//! Where the CLI's store settings come from: flags, then environment variables, then a config
//! file (`--config` / `S3RS_CONFIG`), then the component's own fallbacks (`AWS_*`).

use std::path::Path;

use s3_result_store_host::{AddressingStyle, ConfigInput};
use serde::Deserialize;

/// A config file: the long flags' names as keys, e.g.
///
/// ```toml
/// endpoint-url = "http://127.0.0.1:3900"
/// region = "garage"
/// bucket = "results"
/// base-path = "celery/"
/// global-keyprefix = "myapp"
/// max-attempts = 5
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub bucket: Option<String>,
    pub base_path: Option<String>,
    pub addressing_style: Option<Style>,
    pub max_attempts: Option<u32>,
    pub operation_timeout_ms: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub first_byte_timeout_ms: Option<u32>,
    pub between_bytes_timeout_ms: Option<u32>,
    pub max_value_bytes: Option<u64>,
    pub global_keyprefix: Option<String>,
    pub ca_bundle: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Style {
    Auto,
    Path,
    VirtualHosted,
}

impl From<Style> for AddressingStyle {
    fn from(style: Style) -> AddressingStyle {
        match style {
            Style::Auto => AddressingStyle::Auto,
            Style::Path => AddressingStyle::Path,
            Style::VirtualHosted => AddressingStyle::VirtualHosted,
        }
    }
}

impl ConfigFile {
    /// Reads and checks a config file; the message says which file and what is wrong.
    pub fn load(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let file: ConfigFile = toml::from_str(&text)
            .map_err(|e| format!("config file {}: {}", path.display(), e.message()))?;
        if file.secret_access_key.is_some() && readable_by_others(path) {
            eprintln!(
                "warning: {} holds a secret key and others can read it (chmod 600 it)",
                path.display()
            );
        }
        Ok(file)
    }

    /// `flags` (flags and environment variables, as clap parsed them) over this file. `style`
    /// is the addressing-style flag, if given.
    pub fn under(self, flags: ConfigInput, style: Option<Style>) -> ConfigInput {
        ConfigInput {
            endpoint_url: flags.endpoint_url.or(self.endpoint_url),
            region: flags.region.or(self.region),
            access_key_id: flags.access_key_id.or(self.access_key_id),
            secret_access_key: flags.secret_access_key.or(self.secret_access_key),
            session_token: flags.session_token.or(self.session_token),
            bucket_name: flags.bucket_name.or(self.bucket),
            base_path: flags.base_path.or(self.base_path),
            addressing_style: style
                .or(self.addressing_style)
                .unwrap_or(Style::Auto)
                .into(),
            max_attempts: flags.max_attempts.or(self.max_attempts),
            operation_timeout_ms: flags.operation_timeout_ms.or(self.operation_timeout_ms),
            connect_timeout_ms: flags.connect_timeout_ms.or(self.connect_timeout_ms),
            first_byte_timeout_ms: flags.first_byte_timeout_ms.or(self.first_byte_timeout_ms),
            between_bytes_timeout_ms: flags
                .between_bytes_timeout_ms
                .or(self.between_bytes_timeout_ms),
            max_value_bytes: flags.max_value_bytes.or(self.max_value_bytes),
        }
    }
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = parse(
            "endpoint-url = \"http://file:1\"\nbucket = \"from-file\"\nmax-attempts = 7\n\
             addressing-style = \"virtual-hosted\"",
        )
        .unwrap();
        assert!(matches!(file.addressing_style, Some(Style::VirtualHosted)));
        let flags = ConfigInput {
            bucket_name: Some("from-flag".into()),
            ..ConfigInput::default()
        };
        let merged = file.under(flags, None);
        assert_eq!(merged.addressing_style, AddressingStyle::VirtualHosted);
        assert_eq!(merged.bucket_name.as_deref(), Some("from-flag"));
        assert_eq!(merged.endpoint_url.as_deref(), Some("http://file:1"));
        assert_eq!(merged.max_attempts, Some(7));
        let flag = ConfigFile::default().under(ConfigInput::default(), Some(Style::Path));
        assert_eq!(flag.addressing_style, AddressingStyle::Path);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_by_name() {
        let err = parse("bukcet = \"x\"").unwrap_err();
        assert!(err.contains("bukcet"), "{err}");
        let err = parse("max-attempts = \"three\"").unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        let err = parse("addressing-style = \"sideways\"").unwrap_err();
        assert!(err.contains("sideways"), "{err}");
    }
}
