//! AWS clients and credentials: the one place where SDK configuration is decided.
//!
//! Region, endpoint URL, retries and timeouts are set once on a base [`SdkConfig`]; each account then
//! gets a copy of it with its own credentials provider (static keys, a profile, an assumed role or the
//! default chain; always aws-config's providers). Every client, the STS client behind an assumed role
//! included, is built from that config, so `--endpoint-url` reaches every call, and all clients share
//! one HTTP connection pool.

use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::accounts::{Account, AccountId, CredentialSource};

/// The region the seed hard-coded, used when neither a flag, the environment nor a profile gives one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// The settings that apply to every account.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// `--region`; when unset, the SDK's own resolution (AWS_REGION, profile), then [`FALLBACK_REGION`].
    pub region: Option<String>,
    /// `--endpoint-url` or AWS_ENDPOINT_URL: every call of every service goes there.
    pub endpoint_url: Option<String>,
    /// Attempts per call for the SDK's standard retry (throttling, 5xx, timeouts), jittered backoff.
    pub max_attempts: u32,
}

/// Builds the configuration shared by all accounts. Loads the environment and shared files once.
pub async fn base_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(settings.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return config
            .into_builder()
            .region(Region::from_static(FALLBACK_REGION))
            .build();
    }
    config
}

/// The clients for one account.
#[derive(Clone, Debug)]
pub struct AccountClients {
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub sts: aws_sdk_sts::Client,
    pub region: String,
}

/// Builds the clients for `account`. Credentials are resolved lazily by the SDK, so a bad profile or
/// an unassumable role shows up on the first call (the identity check), with the provider's message.
pub async fn account_clients(base: &SdkConfig, account: &Account) -> AccountClients {
    let mut config = base.to_builder();
    if let Some(region) = &account.region {
        config.set_region(Some(Region::new(region.clone())));
    }
    let config = config.build();
    let provider: Option<SharedCredentialsProvider> = match &account.credentials {
        CredentialSource::DefaultChain => None,
        CredentialSource::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => Some(SharedCredentialsProvider::new(Credentials::new(
            access_key_id.clone(),
            secret_access_key.expose().to_string(),
            session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "mvl-monitor accounts file",
        ))),
        CredentialSource::Profile(name) => Some(profile_provider(name)),
        CredentialSource::AssumeRole {
            role_arn,
            external_id,
            session_name,
            source_profile,
        } => {
            let mut builder = AssumeRoleProvider::builder(role_arn.clone())
                .session_name(
                    session_name
                        .clone()
                        .unwrap_or_else(|| "mvl-monitor".to_string()),
                )
                .configure(&config);
            if let Some(region) = config.region() {
                builder = builder.region(region.clone());
            }
            if let Some(external_id) = external_id {
                builder = builder.external_id(external_id.expose());
            }
            let source = match source_profile {
                Some(name) => profile_provider(name),
                None => config
                    .credentials_provider()
                    .unwrap_or_else(|| SharedCredentialsProvider::new(NoCredentials)),
            };
            Some(SharedCredentialsProvider::new(
                builder.build_from_provider(source).await,
            ))
        }
    };
    let config = match provider {
        Some(provider) => config.into_builder().credentials_provider(provider).build(),
        None => config,
    };
    AccountClients {
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        cloudformation: aws_sdk_cloudformation::Client::new(&config),
        sts: aws_sdk_sts::Client::new(&config),
        region: config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| FALLBACK_REGION.to_string()),
    }
}

/// A named profile from the shared config and credentials files (static keys, SSO, credential_process
/// or a role chain inside the profile), through aws-config's profile provider.
fn profile_provider(name: &str) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(
        ProfileFileCredentialsProvider::builder()
            .profile_name(name)
            .build(),
    )
}

/// Stands in when the default chain could not be set up at all, so the failure is reported per account.
#[derive(Debug)]
struct NoCredentials;

impl aws_credential_types::provider::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no credentials in the default chain (environment, shared files, SSO, instance role)",
            ),
        ))
    }
}

/// A short account of an SDK error for people: `Code: message` for a service error, the chain of
/// causes for a network or credentials failure. (The SDK's `DisplayErrorContext` appends a `Debug`
/// dump of the raw error, which is noise to an operator.)
pub fn error_message<E, R>(err: &aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(service) = err.as_service_error() {
        match (service.code(), service.message()) {
            (Some(code), Some(message)) => return format!("{code}: {message}"),
            (Some(code), None) => return code.to_string(),
            _ => {}
        }
    }
    error_chain(err)
}

/// `outer: cause: root cause`, skipping a cause whose text the message already includes.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Why an account's identity could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("Failed to verify identity (sts:GetCallerIdentity) with {via}: {detail}")]
    Call { via: String, detail: String },
    #[error(
        "the credentials for account {expected} belong to account {actual} ({arn})\n  fix the keys, profile or role of this entry in the accounts file"
    )]
    Mismatch {
        expected: AccountId,
        actual: String,
        arn: String,
    },
}

/// Confirms that the credentials belong to `expected`, so that one account's numbers can never be
/// filed under another's id. Returns the caller's ARN.
pub async fn verify_identity(
    sts: &aws_sdk_sts::Client,
    expected: &AccountId,
    via: &CredentialSource,
) -> Result<String, IdentityError> {
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|err| IdentityError::Call {
            via: via.to_string(),
            detail: error_message(&err),
        })?;
    let actual = identity.account().unwrap_or_default();
    let arn = identity.arn().unwrap_or_default().to_string();
    if actual != expected.as_str() {
        return Err(IdentityError::Mismatch {
            expected: expected.clone(),
            actual: if actual.is_empty() {
                "(none returned)".into()
            } else {
                actual.to_string()
            },
            arn,
        });
    }
    Ok(arn)
}
