//! Stack discovery: which log group the mirror-validator Lambda writes to in an account.
//!
//! The node's CloudFormation stack publishes the log group's name as a stack output, so operators
//! never have to copy generated names around. An accounts-file entry may name the log group itself,
//! in which case no CloudFormation call is made.

use aws_sdk_cloudformation::Client as CloudFormationClient;
use aws_sdk_cloudwatchlogs::Client as LogsClient;

use crate::aws::error_message;

/// Why the log group could not be found.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("Failed to describe stack {stack}: {detail}")]
    Describe { stack: String, detail: String },
    #[error(
        "Failed to describe stack {stack}: the stack does not exist in {region}\n  check --stack-name and --region, or set `log_group` for this entry"
    )]
    NotFound { stack: String, region: String },
    #[error(
        "stack {stack} has no output {key} (outputs: {available})\n  check --output-key, or set `log_group` for this entry"
    )]
    OutputMissing {
        stack: String,
        key: String,
        available: String,
    },
    #[error("Failed to describe log groups: {0}")]
    DescribeLogGroups(String),
    #[error("log group {0} does not exist")]
    LogGroupMissing(String),
}

/// Reads the value of output `output_key` of stack `stack`.
pub async fn log_group_from_stack(
    client: &CloudFormationClient,
    stack: &str,
    output_key: &str,
    region: &str,
) -> Result<String, StackError> {
    let response = client.describe_stacks().stack_name(stack).send().await;
    let output = match response {
        Ok(output) => output,
        Err(err) => {
            let detail = error_message(&err);
            // CloudFormation reports a missing stack as a ValidationError "... does not exist".
            if detail.contains("does not exist") {
                return Err(StackError::NotFound {
                    stack: stack.to_string(),
                    region: region.to_string(),
                });
            }
            return Err(StackError::Describe {
                stack: stack.to_string(),
                detail,
            });
        }
    };
    let Some(found) = output.stacks().first() else {
        return Err(StackError::NotFound {
            stack: stack.to_string(),
            region: region.to_string(),
        });
    };
    let outputs = found.outputs();
    outputs
        .iter()
        .find(|o| o.output_key() == Some(output_key))
        .and_then(|o| o.output_value())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| StackError::OutputMissing {
            stack: stack.to_string(),
            key: output_key.to_string(),
            available: if outputs.is_empty() {
                "none".to_string()
            } else {
                outputs
                    .iter()
                    .filter_map(|o| o.output_key())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// Confirms that `log_group` exists (for `mvl-monitor check`; `collect` learns it from StartQuery).
pub async fn log_group_exists(client: &LogsClient, log_group: &str) -> Result<(), StackError> {
    let response = client
        .describe_log_groups()
        .log_group_name_prefix(log_group)
        .send()
        .await
        .map_err(|err| StackError::DescribeLogGroups(error_message(&err)))?;
    if response
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(log_group))
    {
        Ok(())
    } else {
        Err(StackError::LogGroupMissing(log_group.to_string()))
    }
}
