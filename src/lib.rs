//! mvl-monitor: MVL completeness across AWS accounts, hour by hour.
//!
//! The pipeline, one module per stage: [`accounts`] (the accounts file) → [`aws`] (clients and
//! credentials, identity check) → [`stack`] (log group discovery) → [`insights`] (one Logs Insights
//! query) → [`collect`] (every account at once; the only place that owns concurrency) → [`csv_file`]
//! and [`chart`] (the outputs, written atomically by [`output`]). [`window`] defines the time windows,
//! [`console`] what the user sees, and [`cli`] ties it together behind the flags.

pub mod accounts;
pub mod aws;
pub mod chart;
pub mod cli;
pub mod collect;
pub mod console;
pub mod csv_file;
pub mod insights;
pub mod output;
pub mod stack;
pub mod window;
