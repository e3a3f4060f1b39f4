//! The `[well]` table of an oxide well (`kind = "oxide"`): which rack, with
//! which credential, in which mode, and the limits of what it makes.
//! `docs/wells.md` describes every key.

use aquifer_protocol::Credential;
use aquifer_well::config::{Serves, WellSettings};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

fn default_prefix() -> String {
    "aq".into()
}
fn default_project_role() -> ProjectRole {
    ProjectRole::Collaborator
}
fn default_token_ttl_max_s() -> u32 {
    86_400
}
fn default_request_timeout_ms() -> u64 {
    60_000
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}
fn default_instance_stop_timeout_ms() -> u64 {
    300_000
}
fn default_retries() -> u32 {
    3
}
fn default_retry_base_ms() -> u64 {
    250
}

/// The longest prefix: `<prefix>-<u32>-admin` must stay within Oxide's
/// 63-character names.
const PREFIX_LEN_MAX: usize = 40;

/// What one resource is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A user, a project and a token in the credential's own (existing,
    /// local-only) silo; the credential is a silo admin's.
    Project,
    /// A silo of its own, with a well-owned admin, a user, a project and a
    /// token; the credential is a fleet admin's.
    Silo,
}

/// The job user's role on its project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectRole {
    Admin,
    Collaborator,
    LimitedCollaborator,
    Viewer,
}

impl ProjectRole {
    #[must_use]
    pub fn api(self) -> oxide::types::ProjectRole {
        match self {
            ProjectRole::Admin => oxide::types::ProjectRole::Admin,
            ProjectRole::Collaborator => oxide::types::ProjectRole::Collaborator,
            ProjectRole::LimitedCollaborator => oxide::types::ProjectRole::LimitedCollaborator,
            ProjectRole::Viewer => oxide::types::ProjectRole::Viewer,
        }
    }
}

/// The quotas of each silo the well makes (silo mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    pub cpus: u32,
    pub memory_gib: u64,
    pub storage_gib: u64,
}

// Debug is written out below, without the token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OxideConfig {
    /// The one resource type this well serves.
    pub rtype: String,
    pub mode: Mode,
    /// The Oxide API, `https://oxide.example.com`.
    pub host: String,
    /// The well's Oxide token (a silo admin's in project mode, a fleet
    /// admin's in silo mode); or
    #[serde(default)]
    pub token: Option<String>,
    /// a file holding it. Relative to the configuration file.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A PEM file with the CA certificate of a rack whose certificate is
    /// not signed by a public CA. Relative to the configuration file.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Names are `<prefix>-<resource id>`; two wells sharing a silo (or a
    /// rack, in silo mode) need different prefixes.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default = "default_project_role")]
    pub project_role: ProjectRole,
    /// Whether each project gets Oxide's default VPC and subnet.
    #[serde(default)]
    pub default_vpc: bool,
    /// The longest token lifetime, whatever the job's deadline.
    #[serde(default = "default_token_ttl_max_s")]
    pub token_ttl_max_s: u32,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long a destroy waits for the job's instances to stop.
    #[serde(default = "default_instance_stop_timeout_ms")]
    pub instance_stop_timeout_ms: u64,
    /// How often a call that failed in a way that may pass (no answer, a
    /// 5xx, a 429) is tried again, with back-off from `retry_base_ms`.
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Silo mode: the API endpoint the job is told to use, where `{silo}`
    /// stands for the silo's name. Defaults to `host`.
    #[serde(default)]
    pub job_host: Option<String>,
    /// Silo mode: the quotas of each silo.
    #[serde(default)]
    pub quotas: Option<Quotas>,
    /// Silo mode: IP pools linked to each silo (the first as its default),
    /// so that the job's instances can have external addresses.
    #[serde(default)]
    pub ip_pools: Vec<String>,
}

impl fmt::Debug for OxideConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OxideConfig")
            .field("rtype", &self.rtype)
            .field("mode", &self.mode)
            .field("host", &self.host)
            .field("token", &self.token.as_ref().map(|_| "(secret)"))
            .field("token_file", &self.token_file)
            .field("ca_cert", &self.ca_cert)
            .field("prefix", &self.prefix)
            .field("project_role", &self.project_role)
            .field("default_vpc", &self.default_vpc)
            .field("token_ttl_max_s", &self.token_ttl_max_s)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("instance_stop_timeout_ms", &self.instance_stop_timeout_ms)
            .field("retries", &self.retries)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("job_host", &self.job_host)
            .field("quotas", &self.quotas)
            .field("ip_pools", &self.ip_pools)
            .finish()
    }
}

impl OxideConfig {
    /// The rack and the well's Oxide token, as the table gives them.
    pub(crate) fn rack(&self) -> Credential<'_> {
        Credential {
            url_key: "host",
            url: &self.host,
            whose: "the oxide",
            token: self.token.as_deref(),
            token_file: self.token_file.as_deref(),
        }
    }
}

impl WellSettings for OxideConfig {
    const KIND: &'static str = "oxide";

    fn validate(&self) -> Result<(), String> {
        self.rack().check()?;
        let p = &self.prefix;
        let ok = p.len() <= PREFIX_LEN_MAX
            && p.starts_with(|c: char| c.is_ascii_lowercase())
            && !p.ends_with('-')
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(format!(
                "prefix {p:?}: use 1 to {PREFIX_LEN_MAX} lowercase letters, digits and '-', starting with a letter"
            ));
        }
        if self.token_ttl_max_s == 0 {
            return Err("token_ttl_max_s is at least 1".into());
        }
        if self.request_timeout_ms < 100 || self.connect_timeout_ms < 100 {
            return Err("request_timeout_ms and connect_timeout_ms are at least 100".into());
        }
        match self.mode {
            Mode::Project => {
                let silo_only = [
                    ("job_host", self.job_host.is_some()),
                    ("quotas", self.quotas.is_some()),
                    ("ip_pools", !self.ip_pools.is_empty()),
                ];
                if let Some((k, _)) = silo_only.iter().find(|(_, set)| *set) {
                    return Err(format!("{k} is for mode = \"silo\" only"));
                }
            }
            Mode::Silo => {
                if self.quotas.is_none() {
                    return Err(
                        "mode = \"silo\" needs [well.quotas] (cpus, memory_gib, storage_gib)"
                            .into(),
                    );
                }
            }
        }
        Ok(())
    }

    fn serves(&self) -> Serves<'_> {
        Serves::Counted(&self.rtype)
    }

    /// `token_file` and `ca_cert`.
    fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.token_file, &mut self.ca_cert]
            .into_iter()
            .flatten()
        {
            *p = base.join(&*p);
        }
    }
}

impl OxideConfig {
    /// The endpoint the job is told to use for `silo`.
    #[must_use]
    pub fn job_host(&self, silo: &str) -> String {
        match &self.job_host {
            Some(t) => t.replace("{silo}", silo),
            None => self.host.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aquifer_well::config::Config;

    fn parse(text: &str) -> Result<OxideConfig, String> {
        let c: OxideConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    const PROJECT: &str = r#"
        rtype = "oxide-token"
        mode = "project"
        host = "https://oxide.example.com"
        token_file = "oxide.token"
    "#;

    #[test]
    fn defaults_and_modes() {
        let c = parse(PROJECT).expect("a project-mode well");
        assert_eq!(c.prefix, "aq");
        assert_eq!(c.project_role, ProjectRole::Collaborator);
        assert!(!c.default_vpc);
        assert_eq!(c.job_host("aq-1"), "https://oxide.example.com");
        let silo = PROJECT.replace("\"project\"", "\"silo\"")
            + "job_host = \"https://{silo}.sys.example.com\"\n"
            + "[quotas]\ncpus = 4\nmemory_gib = 8\nstorage_gib = 64\n";
        let c = parse(&silo).expect("a silo-mode well");
        assert_eq!(c.job_host("aq-7"), "https://aq-7.sys.example.com");
        assert_eq!(c.quotas.map(|q| q.cpus), Some(4));
    }

    #[test]
    fn mistakes_are_refused() {
        let bad = [
            (PROJECT.replace("\"project\"", "\"silo\""), "quotas"),
            (PROJECT.replace("token_file", "token_fil"), "token_fil"),
            (format!("{PROJECT}\nprefix = \"Aq\""), "prefix"),
            (format!("{PROJECT}\nprefix = \"aq-\""), "prefix"),
            (format!("{PROJECT}\nip_pools = [\"default\"]"), "ip_pools"),
            (format!("{PROJECT}\ntoken = \"t\""), "not both"),
            (PROJECT.replace("https://", "ftp://"), "host"),
            (format!("{PROJECT}\nproject_role = \"owner\""), "owner"),
        ];
        for (text, needle) in bad {
            let e = parse(&text).expect_err(needle);
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn a_well_file_names_its_capacity_and_hides_its_token() {
        let well = |capacity: &str| {
            format!(
                "url = \"http://127.0.0.1:8440\"\ntoken = \"aq_x\"\ndata_dir = \"d\"\n{capacity}\n\
                 [well]\nkind = \"oxide\"\nrtype = \"oxide-token\"\nmode = \"project\"\n\
                 host = \"https://rack\"\ntoken = \"oxide-token-secret\"\n"
            )
        };
        let parse = |text: &str| Config::<OxideConfig>::parse(text);
        let c = parse(&well("[capacity]\noxide-token = 3")).expect("parsed");
        assert_eq!(c.capacity().get("oxide-token"), Some(&3));
        assert!(!format!("{c:?}").contains("oxide-token-secret"), "{c:?}");
        let e = parse(&well("")).expect_err("no capacity");
        assert!(e.to_string().contains("[capacity] oxide-token = n"), "{e}");
        let e = parse(&well("[capacity]\npg = 1")).expect_err("a stranger");
        assert!(e.to_string().contains("not pg"), "{e}");
    }

    #[test]
    fn paths_are_relative_to_the_configuration() {
        let mut c = parse(&format!("{PROJECT}\nca_cert = \"ca.pem\"")).expect("parsed");
        c.resolve_paths(Path::new("/etc/aquifer"));
        assert_eq!(
            c.token_file,
            Some(PathBuf::from("/etc/aquifer/oxide.token"))
        );
        assert_eq!(c.ca_cert, Some(PathBuf::from("/etc/aquifer/ca.pem")));
    }
}
