//! The accounts file: which AWS accounts to read and how to reach each of them.
//!
//! The format is the seed script's (`Account ID` with a space, `username`, `password`, static keys), so
//! existing files keep working, extended with the ways AWS recommends to give credentials (`profile`,
//! `role_arn`) and per-account overrides for what the seed hard-coded (`region`, `stack_name`,
//! `log_group`). Everything here is validated up front: a bad file stops the run before any AWS call,
//! with the entry, field, line and column of the problem. Secrets are wrapped in [`Secret`] so that no
//! `Debug` or `Display` of an account can show them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;

/// A value that must never be shown: secret keys, session tokens, passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to the SDK. Named loudly so that every use is easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

/// A 12-digit AWS account id, kept as text so leading zeros survive.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Parses the text form. A YAML number loses its leading zeros, so callers pad those first.
    pub fn parse(text: &str) -> Option<AccountId> {
        let text = text.trim();
        (text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| AccountId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How one account's credentials are obtained. Every variant ends in an aws-config provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// Nothing in the file: the SDK's default chain (environment, shared files, SSO, IMDS, ...).
    DefaultChain,
    /// Keys written in the file, as the seed did.
    Static {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    /// A named profile from the shared config and credentials files.
    Profile(String),
    /// A role assumed into the account, from the default chain or from `source_profile`.
    AssumeRole {
        role_arn: String,
        external_id: Option<Secret>,
        session_name: Option<String>,
        source_profile: Option<String>,
    },
}

impl fmt::Display for CredentialSource {
    /// Where the credentials come from, for messages (never the secret itself).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::DefaultChain => f.write_str("the default credential chain"),
            CredentialSource::Static { access_key_id, .. } => {
                write!(f, "the keys in the accounts file ({access_key_id})")
            }
            CredentialSource::Profile(name) => write!(f, "profile `{name}`"),
            CredentialSource::AssumeRole {
                role_arn,
                source_profile,
                ..
            } => match source_profile {
                Some(profile) => write!(f, "role {role_arn} assumed from profile `{profile}`"),
                None => write!(
                    f,
                    "role {role_arn} assumed from the default credential chain"
                ),
            },
        }
    }
}

/// One entry of the accounts file, validated.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: AccountId,
    /// 1-based position in the file, for messages.
    pub entry: usize,
    /// Line of the entry in the file, for messages.
    pub line: u64,
    pub username: Option<String>,
    pub credentials: CredentialSource,
    pub region: Option<String>,
    pub stack_name: Option<String>,
    pub log_group: Option<String>,
}

impl Account {
    /// Whether the entry itself holds a secret (and so the file's permissions matter).
    pub fn holds_secret(&self) -> bool {
        matches!(self.credentials, CredentialSource::Static { .. })
    }
}

/// Everything that can be wrong with an accounts file. Each message says where and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(
        "accounts file not found: {path}\n  create it (see README.md, \"The accounts file\"), or point to it with --accounts PATH"
    )]
    NotFound { path: PathBuf },
    #[error("cannot read accounts file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a valid accounts file: {message}")]
    Syntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error(
        "{path}: the accounts file has no entries\n  add one entry per account: a YAML list of mappings with at least `Account ID`"
    )]
    Empty { path: PathBuf },
    #[error("{path}:{line}: entry {entry}{account}: {problem}")]
    Entry {
        path: PathBuf,
        line: u64,
        entry: usize,
        /// " (account 123...)" when the id is known, else empty.
        account: String,
        problem: String,
    },
    #[error(
        "{path}:{line}: entry {entry}: account {id} is listed twice (first at line {first_line})\n  remove one of the two entries"
    )]
    Duplicate {
        path: PathBuf,
        line: u64,
        entry: usize,
        id: AccountId,
        first_line: u64,
    },
}

/// A YAML scalar as written: the accounts file accepts numbers or strings for the id, and we want to
/// report a wrong type ourselves, with the entry and field, instead of serde's generic message.
#[derive(Clone, Debug, PartialEq)]
enum Scalar {
    Text(String),
    Integer(i128),
    Float(f64),
    Bool(bool),
    Null,
}

impl Scalar {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Text(_) => "a string",
            Scalar::Integer(_) => "a number",
            Scalar::Float(_) => "a number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Null => "empty",
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a single value (string or number), not a list or mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                i128::try_from(v)
                    .map(Scalar::Integer)
                    .map_err(|_| E::custom("number too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(d)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

type Field = Option<Spanned<Scalar>>;

/// An entry as written, before validation. Unknown keys are rejected so that a typo
/// (`rolearn:`) is an error rather than a silently ignored setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(rename = "Account ID")]
    account_id: Field,
    username: Field,
    password: Field,
    aws_access_key_id: Field,
    aws_secret_access_key: Field,
    aws_session_token: Field,
    profile: Field,
    role_arn: Field,
    external_id: Field,
    role_session_name: Field,
    region: Field,
    stack_name: Field,
    log_group: Field,
}

/// Fields whose values are secret: a type error on them must not echo the value.
const KNOWN_FIELDS: &str = "Account ID, username, password, aws_access_key_id, aws_secret_access_key, \
aws_session_token, profile, role_arn, external_id, role_session_name, region, stack_name, log_group";

/// A loaded accounts file.
#[derive(Debug)]
pub struct AccountsFile {
    pub path: PathBuf,
    pub accounts: Vec<Account>,
}

impl AccountsFile {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<AccountsFile, AccountsError> {
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => AccountsError::NotFound {
                path: path.to_path_buf(),
            },
            _ => AccountsError::Unreadable {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let accounts = parse(&text, path)?;
        Ok(AccountsFile {
            path: path.to_path_buf(),
            accounts,
        })
    }

    /// Whether any entry holds a secret in the file itself.
    pub fn holds_secrets(&self) -> bool {
        self.accounts.iter().any(Account::holds_secret)
    }
}

/// Parses the text of an accounts file; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Account>, AccountsError> {
    let options = serde_saphyr::options! { with_snippet: false };
    let parsed: Option<Vec<Spanned<RawEntry>>> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|err| syntax_error(&err, path))?;
    let raw = parsed.unwrap_or_default();
    if raw.is_empty() {
        return Err(AccountsError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut accounts: Vec<Account> = Vec::with_capacity(raw.len());
    let mut seen: HashMap<AccountId, u64> = HashMap::new();
    for (index, spanned) in raw.into_iter().enumerate() {
        let line = spanned.referenced.line();
        let account = validate(spanned.value, index + 1, line, path)?;
        if let Some(&first_line) = seen.get(&account.id) {
            return Err(AccountsError::Duplicate {
                path: path.to_path_buf(),
                line,
                entry: index + 1,
                id: account.id,
                first_line,
            });
        }
        seen.insert(account.id.clone(), line);
        accounts.push(account);
    }
    Ok(accounts)
}

/// Turns a YAML or shape error into our message. serde-saphyr can render a snippet of the input,
/// which could show a secret from a nearby line, so only its message and position are kept.
fn syntax_error(err: &serde_saphyr::Error, path: &Path) -> AccountsError {
    let (line, column) = err
        .location()
        .map(|loc| (loc.line(), loc.column()))
        .unwrap_or((0, 0));
    let mut message = err.without_snippet().to_string();
    // The library appends its own "at line X column Y"; we print the position in front instead.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    if message.contains("unknown field") {
        message.push_str(&format!(
            "\n  the fields an entry may have are: {KNOWN_FIELDS}"
        ));
    }
    if message.contains("sequence") {
        message.push_str(
            "\n  the file must be a YAML list of entries, each starting with `- Account ID: ...`",
        );
    }
    AccountsError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

fn validate(raw: RawEntry, entry: usize, line: u64, path: &Path) -> Result<Account, AccountsError> {
    let problem = |account: Option<&AccountId>, line: u64, problem: String| AccountsError::Entry {
        path: path.to_path_buf(),
        line,
        entry,
        account: account
            .map(|id| format!(" (account {id})"))
            .unwrap_or_default(),
        problem,
    };

    let Some(id_field) = raw.account_id else {
        return Err(problem(
            None,
            line,
            "missing field `Account ID`\n  every entry needs the 12-digit AWS account id, e.g. `- Account ID: \"123456789012\"`"
                .into(),
        ));
    };
    let id = account_id(&id_field.value).ok_or_else(|| {
        problem(
            None,
            id_field.referenced.line(),
            format!(
                "field `Account ID` must be a 12-digit AWS account id, got {}\n  write it as digits, quoted to be safe: `Account ID: \"123456789012\"`",
                describe(&id_field.value, false)
            ),
        )
    })?;

    // Reads an optional text field; secrets are never echoed in the error.
    let text = |field: &Field, name: &str, secret: bool| -> Result<Option<String>, AccountsError> {
        match field {
            None => Ok(None),
            Some(spanned) => match &spanned.value {
                Scalar::Text(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Scalar::Null => Ok(None),
                Scalar::Text(_) => Err(problem(
                    Some(&id),
                    spanned.referenced.line(),
                    format!("field `{name}` is empty\n  give it a value or remove the line"),
                )),
                other => Err(problem(
                    Some(&id),
                    spanned.referenced.line(),
                    format!(
                        "field `{name}` must be a string, got {}\n  quote the value",
                        describe(other, secret)
                    ),
                )),
            },
        }
    };

    let username = text(&raw.username, "username", false)?;
    // Accepted for compatibility with the seed's files; never used, never printed.
    let _ = text(&raw.password, "password", true)?;
    let access_key_id = text(&raw.aws_access_key_id, "aws_access_key_id", false)?;
    let secret_access_key = text(&raw.aws_secret_access_key, "aws_secret_access_key", true)?;
    let session_token = text(&raw.aws_session_token, "aws_session_token", true)?;
    let profile = text(&raw.profile, "profile", false)?;
    let role_arn = text(&raw.role_arn, "role_arn", false)?;
    let external_id = text(&raw.external_id, "external_id", true)?;
    let role_session_name = text(&raw.role_session_name, "role_session_name", false)?;
    let region = text(&raw.region, "region", false)?;
    let stack_name = text(&raw.stack_name, "stack_name", false)?;
    let log_group = text(&raw.log_group, "log_group", false)?;

    let has_keys = access_key_id.is_some() || secret_access_key.is_some();
    let has_token = session_token.is_some();
    let credentials = match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret)) => {
            if profile.is_some() || role_arn.is_some() {
                return Err(problem(
                    Some(&id),
                    line,
                    "static keys cannot be combined with `profile` or `role_arn`\n  keep one way of giving credentials for this entry".into(),
                ));
            }
            CredentialSource::Static {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: session_token.map(Secret::new),
            }
        }
        (Some(_), None) => {
            return Err(problem(
                Some(&id),
                line,
                "`aws_access_key_id` is set but `aws_secret_access_key` is missing\n  add the secret key, or remove both and use `profile` or `role_arn`".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(problem(
                Some(&id),
                line,
                "`aws_secret_access_key` is set but `aws_access_key_id` is missing\n  add the access key id, or remove both and use `profile` or `role_arn`".into(),
            ));
        }
        (None, None) => match role_arn {
            Some(role_arn) => {
                if !role_arn.starts_with("arn:") || role_arn.split(':').count() < 6 {
                    return Err(problem(
                        Some(&id),
                        line,
                        format!(
                            "field `role_arn` is not an ARN: {role_arn}\n  write it as arn:aws:iam::{id}:role/NAME"
                        ),
                    ));
                }
                CredentialSource::AssumeRole {
                    role_arn,
                    external_id: external_id.clone().map(Secret::new),
                    session_name: role_session_name.clone(),
                    source_profile: profile,
                }
            }
            None => match profile {
                Some(profile) => CredentialSource::Profile(profile),
                None => CredentialSource::DefaultChain,
            },
        },
    };
    if !has_keys && has_token {
        return Err(problem(
            Some(&id),
            line,
            "`aws_session_token` needs `aws_access_key_id` and `aws_secret_access_key`".into(),
        ));
    }
    if !matches!(credentials, CredentialSource::AssumeRole { .. })
        && (external_id.is_some() || role_session_name.is_some())
    {
        return Err(problem(
            Some(&id),
            line,
            "`external_id` and `role_session_name` only apply with `role_arn`".into(),
        ));
    }

    Ok(Account {
        id,
        entry,
        line,
        username,
        credentials,
        region,
        stack_name,
        log_group,
    })
}

/// The account id from a string or a YAML number. A number drops leading zeros (`012345678901` reads
/// as 12345678901), and every AWS account id has exactly 12 digits, so a shorter number is padded.
fn account_id(value: &Scalar) -> Option<AccountId> {
    match value {
        Scalar::Text(text) => AccountId::parse(text),
        Scalar::Integer(n) if (0..1_000_000_000_000).contains(n) => {
            AccountId::parse(&format!("{n:012}"))
        }
        // YAML parsers differ on digits with a leading zero; some read them as a float.
        Scalar::Float(f) if f.fract() == 0.0 && (0.0..1e12).contains(f) => {
            AccountId::parse(&format!("{:012}", *f as u64))
        }
        _ => None,
    }
}

fn describe(value: &Scalar, secret: bool) -> String {
    if secret {
        return value.kind().to_string();
    }
    match value {
        Scalar::Text(s) => format!("{s:?}"),
        Scalar::Integer(n) => n.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Null => "nothing".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Account>, AccountsError> {
        parse(text, Path::new("accounts.yaml"))
    }

    fn error(text: &str) -> String {
        match load(text) {
            Ok(accounts) => panic!("expected an error, got {accounts:?}"),
            Err(err) => err.to_string(),
        }
    }

    const SEED_EXAMPLE: &str = "\
- Account ID: 123456789012
  username: user1@example.com
  password: optional_field
  aws_access_key_id: AKIAIOSFODNN7EXAMPLE
  aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

- Account ID: 987654321098
  username: user2@example.com
  password: optional_field
  aws_access_key_id: AKIAI44QH8DHBEXAMPLE
  aws_secret_access_key: je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY
";

    #[test]
    fn reads_the_seed_readme_example_verbatim() {
        let accounts = load(SEED_EXAMPLE).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].id.as_str(), "123456789012");
        assert_eq!(accounts[1].id.as_str(), "987654321098");
        assert_eq!(accounts[0].line, 1);
        assert_eq!(accounts[1].line, 7);
        assert_eq!(accounts[0].username.as_deref(), Some("user1@example.com"));
        match &accounts[1].credentials {
            CredentialSource::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                assert_eq!(access_key_id, "AKIAI44QH8DHBEXAMPLE");
                assert_eq!(
                    secret_access_key.expose(),
                    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
                );
                assert!(session_token.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let accounts = load(SEED_EXAMPLE).unwrap();
        let debug = format!("{accounts:?}");
        assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
        assert!(!debug.contains("optional_field"), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn keeps_leading_zeros_of_quoted_ids_and_pads_numeric_ones() {
        let accounts =
            load("- Account ID: \"012345678901\"\n- Account ID: 012345678902\n").unwrap();
        assert_eq!(accounts[0].id.as_str(), "012345678901");
        assert_eq!(accounts[1].id.as_str(), "012345678902");
    }

    #[test]
    fn entry_without_credentials_uses_the_default_chain() {
        let accounts = load("- Account ID: '123456789012'\n").unwrap();
        assert_eq!(accounts[0].credentials, CredentialSource::DefaultChain);
    }

    #[test]
    fn profile_role_and_overrides() {
        let accounts = load(
            "- Account ID: '111111111111'\n  profile: ops\n  region: eu-west-1\n  stack_name: s\n  log_group: /g\n\
             - Account ID: '222222222222'\n  role_arn: arn:aws:iam::222222222222:role/reader\n  external_id: xid\n  profile: base\n  role_session_name: mvl\n",
        )
        .unwrap();
        assert_eq!(
            accounts[0].credentials,
            CredentialSource::Profile("ops".into())
        );
        assert_eq!(accounts[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(accounts[0].stack_name.as_deref(), Some("s"));
        assert_eq!(accounts[0].log_group.as_deref(), Some("/g"));
        assert_eq!(
            accounts[1].credentials,
            CredentialSource::AssumeRole {
                role_arn: "arn:aws:iam::222222222222:role/reader".into(),
                external_id: Some(Secret::new("xid")),
                session_name: Some("mvl".into()),
                source_profile: Some("base".into()),
            }
        );
        assert!(!accounts[1].holds_secret());
    }

    #[test]
    fn malformed_yaml_reports_line_and_column() {
        let msg = error("- Account ID: '123456789012'\n  username: [unclosed\n");
        assert!(msg.starts_with("accounts.yaml:"), "{msg}");
        assert!(msg.contains("not a valid accounts file"), "{msg}");
        let position: Vec<&str> = msg.splitn(4, ':').collect();
        assert!(position[1].parse::<u64>().unwrap() >= 2, "{msg}");
    }

    #[test]
    fn syntax_errors_do_not_echo_secret_lines() {
        let msg = error(
            "- Account ID: '123456789012'\n  aws_secret_access_key: SECRETSECRET\n  bad: : :\n",
        );
        assert!(!msg.contains("SECRETSECRET"), "{msg}");
    }

    #[test]
    fn missing_account_id_names_entry_and_field() {
        let msg = error("- Account ID: '123456789012'\n- username: someone\n");
        assert!(msg.contains("accounts.yaml:2: entry 2"), "{msg}");
        assert!(msg.contains("missing field `Account ID`"), "{msg}");
    }

    #[test]
    fn ill_typed_fields_are_named() {
        let msg = error("- Account ID: 1234567890123\n");
        assert!(msg.contains("`Account ID` must be a 12-digit"), "{msg}");
        assert!(error("- Account ID: 12345.5\n").contains("got 12345.5"));
        let msg = error("- Account ID: 'abcdefghijkl'\n");
        assert!(msg.contains("\"abcdefghijkl\""), "{msg}");
        let msg = error("- Account ID: '123456789012'\n  region: 5\n");
        assert!(
            msg.contains("entry 1 (account 123456789012): field `region` must be a string"),
            "{msg}"
        );
        let msg = error(
            "- Account ID: '123456789012'\n  aws_access_key_id: AKIDEXAMPLE\n  aws_secret_access_key: 12345\n",
        );
        assert!(
            msg.contains("`aws_secret_access_key` must be a string, got a number"),
            "{msg}"
        );
        assert!(!msg.contains("12345\n"), "{msg}");
        let msg = error("- Account ID: '123456789012'\n  region: ''\n");
        assert!(msg.contains("field `region` is empty"), "{msg}");
    }

    #[test]
    fn a_list_where_a_value_belongs_is_a_syntax_error_with_position() {
        let msg = error("- Account ID: '123456789012'\n  region: [a, b]\n");
        assert!(msg.starts_with("accounts.yaml:2:"), "{msg}");
    }

    #[test]
    fn unknown_field_lists_the_known_ones() {
        let msg = error("- Account ID: '123456789012'\n  rolearn: x\n");
        assert!(msg.contains("rolearn"), "{msg}");
        assert!(msg.contains("the fields an entry may have are"), "{msg}");
    }

    #[test]
    fn duplicate_account_is_rejected_with_both_lines() {
        let msg = error("- Account ID: '123456789012'\n- Account ID: 123456789012\n");
        assert!(
            msg.contains("account 123456789012 is listed twice (first at line 1)"),
            "{msg}"
        );
        assert!(msg.starts_with("accounts.yaml:2:"), "{msg}");
    }

    #[test]
    fn empty_file_and_empty_list_are_rejected() {
        assert!(error("").contains("has no entries"));
        assert!(error("[]\n").contains("has no entries"));
        assert!(error("# only a comment\n").contains("has no entries"));
    }

    #[test]
    fn not_a_list_is_explained() {
        let msg = error("Account ID: '123456789012'\n");
        assert!(msg.contains("must be a YAML list"), "{msg}");
    }

    #[test]
    fn half_given_keys_and_conflicting_sources_are_rejected() {
        assert!(
            error("- Account ID: '123456789012'\n  aws_access_key_id: AKIDEXAMPLE\n")
                .contains("`aws_secret_access_key` is missing")
        );
        assert!(
            error("- Account ID: '123456789012'\n  aws_secret_access_key: s\n")
                .contains("`aws_access_key_id` is missing")
        );
        assert!(
            error("- Account ID: '123456789012'\n  aws_access_key_id: A\n  aws_secret_access_key: s\n  profile: p\n")
                .contains("cannot be combined")
        );
        assert!(
            error("- Account ID: '123456789012'\n  aws_session_token: t\n")
                .contains("`aws_session_token` needs")
        );
        assert!(
            error("- Account ID: '123456789012'\n  external_id: x\n")
                .contains("only apply with `role_arn`")
        );
        assert!(
            error("- Account ID: '123456789012'\n  role_arn: reader\n").contains("is not an ARN")
        );
    }

    #[test]
    fn missing_file_says_which_path_and_how_to_create_it() {
        let err = AccountsFile::load(Path::new("/nonexistent/accounts.yaml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/accounts.yaml"), "{msg}");
        assert!(msg.contains("--accounts"), "{msg}");
    }
}
