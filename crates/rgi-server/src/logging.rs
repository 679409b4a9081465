//! The `tracing` subscriber that [`crate::run`] installs: text or JSON lines on standard error.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoggingError {
    /// The filter is not a level or a list of `tracing` directives.
    #[error("invalid --log-level {filter:?}: {source}")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Warnings a client can cause at will, one per frame, kept out of the log unless the filter
/// names the `h2` crate itself (`SRV-LOG-4`): `h2` warns of every unsolicited `PING` ack.
const CLIENT_CAUSED: &str = "h2::proto::ping_pong=error";

/// The operator's filter, with [`CLIENT_CAUSED`] added unless it has a directive for `h2`.
fn directives(filter: &str) -> String {
    let names_h2 = filter.split(',').any(|directive| {
        let target = directive
            .split(['=', '['])
            .next()
            .unwrap_or_default()
            .trim();
        target == "h2" || target.starts_with("h2::")
    });
    if names_h2 {
        filter.to_owned()
    } else if filter.trim().is_empty() {
        CLIENT_CAUSED.to_owned()
    } else {
        format!("{filter},{CLIENT_CAUSED}")
    }
}

/// Installs the global subscriber (a no-op if one is installed already).
pub(crate) fn init(filter: &str, format: LogFormat) -> Result<(), LoggingError> {
    let env_filter =
        EnvFilter::try_new(directives(filter)).map_err(|source| LoggingError::Filter {
            filter: filter.to_owned(),
            source,
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SRV-LOG-4: the per-frame warnings a client controls are off unless the operator's
    /// filter names `h2`; the result is always a valid filter.
    #[test]
    fn keeps_client_caused_warnings_out() {
        for (filter, expected) in [
            ("info", "info,h2::proto::ping_pong=error"),
            (
                "warn,rgi_server=debug",
                "warn,rgi_server=debug,h2::proto::ping_pong=error",
            ),
            ("", "h2::proto::ping_pong=error"),
            ("debug,h2=trace", "debug,h2=trace"),
            ("info,h2::proto=debug", "info,h2::proto=debug"),
            ("info,h2[stream]=debug", "info,h2[stream]=debug"),
            (
                "info,h2c_thing=debug",
                "info,h2c_thing=debug,h2::proto::ping_pong=error",
            ),
        ] {
            assert_eq!(directives(filter), expected, "{filter}");
            assert!(EnvFilter::try_new(directives(filter)).is_ok(), "{filter}");
        }
    }
}
