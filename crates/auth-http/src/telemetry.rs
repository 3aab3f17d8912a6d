//! Logging set-up: `tracing` with `RUST_LOG` filtering, pretty or JSON lines, and (feature
//! `otlp`, setting `OTEL_EXPORTER_OTLP_ENDPOINT`) the request spans exported as OpenTelemetry
//! traces over OTLP/HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::{fmt, EnvFilter};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where traces go: `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME`, the variables
/// every OpenTelemetry SDK reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceSettings {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: base URL of an OTLP/HTTP collector
    /// (`http://collector:4318`; spans go to `<endpoint>/v1/traces` as protobuf). `None` (the
    /// default): no traces are exported. Needs a build with the `otlp` feature.
    pub otlp_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`: the `service.name` of the exported spans (default
    /// [`DEFAULT_SERVICE_NAME`]).
    pub service_name: String,
}

/// Default of `OTEL_SERVICE_NAME`.
pub const DEFAULT_SERVICE_NAME: &str = "secureauth";

impl TraceSettings {
    /// Reads `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME`.
    pub fn read(env: &crate::settings::Env<'_>) -> Result<Self, crate::settings::ConfigError> {
        let otlp_endpoint = env.string("OTEL_EXPORTER_OTLP_ENDPOINT");
        if let Some(url) = &otlp_endpoint {
            let err = |message: &str| crate::settings::err("OTEL_EXPORTER_OTLP_ENDPOINT", message);
            if !cfg!(feature = "otlp") {
                return Err(err(
                    "this build has no OTLP exporter: build auth-http with `--features otlp`",
                ));
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err("must be an http:// or https:// URL (OTLP over HTTP)"));
            }
        }
        Ok(Self {
            otlp_endpoint,
            service_name: env
                .string("OTEL_SERVICE_NAME")
                .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned()),
        })
    }
}

/// Installs the global subscriber writing to `writer`. Safe to call more than once (later
/// calls are ignored), which tests rely on.
pub fn init<W>(format: LogFormat, default_filter: &str, writer: W)
where
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    init_with_traces(format, default_filter, writer, &TraceSettings::default());
}

/// [`init`], also exporting spans when `traces` names a collector. Call [`shutdown_traces`]
/// before the process ends so the last spans are sent.
pub fn init_with_traces<W>(
    format: LogFormat,
    default_filter: &str,
    writer: W,
    traces: &TraceSettings,
) where
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry()
        .with(otlp::layer(traces))
        .with(filter);
    let budget = LogBudget::new(LOG_BUDGET_INTERVAL);
    let installed = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(writer)
                    .with_filter(budget.clone()),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().with_writer(writer).with_filter(budget.clone()))
            .try_init(),
    };
    if installed.is_ok() {
        budget.report_every(LOG_BUDGET_INTERVAL);
    }
}

/// Sends the spans still buffered and stops the exporter (nothing without one).
pub fn shutdown_traces() {
    otlp::shutdown();
}

#[cfg(feature = "otlp")]
mod otlp {
    //! The OTLP/HTTP exporter: spans batched on the SDK's own thread, sent as protobuf.

    use std::sync::OnceLock;
    use std::time::Duration;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
    use tracing_subscriber::Registry;

    use super::TraceSettings;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// The layer that turns spans into OpenTelemetry spans, when a collector is set and the
    /// exporter could be built (a failure is reported on stderr: logging is not up yet).
    pub(super) fn layer(
        settings: &TraceSettings,
    ) -> Option<tracing_opentelemetry::OpenTelemetryLayer<Registry, SdkTracer>> {
        let endpoint = settings.otlp_endpoint.as_deref()?.trim_end_matches('/');
        let url = if endpoint.ends_with("/v1/traces") {
            endpoint.to_owned()
        } else {
            format!("{endpoint}/v1/traces")
        };
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(Duration::from_secs(5))
            .build()
        {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("auth-http: traces are not exported: {e}");
                return None;
            }
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(settings.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("auth-http");
        // A second call (tests) keeps the first provider; its layer is dropped by `try_init`.
        let _ = PROVIDER.set(provider);
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    }

    pub(super) fn shutdown() {
        if let Some(provider) = PROVIDER.get() {
            if let Err(e) = provider.shutdown() {
                eprintln!("auth-http: flushing the last traces failed: {e}");
            }
        }
    }
}

#[cfg(not(feature = "otlp"))]
mod otlp {
    //! Without the `otlp` feature: no exporter (the settings refuse a collector).

    pub(super) fn layer(_: &super::TraceSettings) -> Option<tracing_subscriber::layer::Identity> {
        None
    }

    pub(super) fn shutdown() {}
}

/// Interval of the log budget: each warning or error call site writes at most one line per
/// interval, and what it held back is reported once per interval with a count.
pub const LOG_BUDGET_INTERVAL: Duration = Duration::from_secs(10);

/// Target of the summary lines, which are never held back.
pub const LOG_BUDGET_TARGET: &str = "auth_http::log_budget";

/// Counts of refused requests (request timeouts, ...) since the last report.
fn refusals() -> &'static Mutex<BTreeMap<&'static str, u64>> {
    static REFUSALS: OnceLock<Mutex<BTreeMap<&'static str, u64>>> = OnceLock::new();
    REFUSALS.get_or_init(Default::default)
}

/// Counts a refused request of this kind; the counts are logged once per
/// [`LOG_BUDGET_INTERVAL`], never one line per request (an attacker could fill the disk).
pub fn count_refusal(kind: &'static str) {
    *lock(refusals()).entry(kind).or_insert(0) += 1;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A filter that lets each warning or error call site through once per interval and counts
/// the rest, so that an attacker who can provoke a warning (malformed requests, refused
/// connections, an outage) cannot multiply log lines. Info and below pass untouched.
#[derive(Debug, Clone)]
pub struct LogBudget {
    interval: Duration,
    slots: Arc<Mutex<HashMap<tracing::callsite::Identifier, Slot>>>,
}

#[derive(Debug)]
struct Slot {
    /// Start of the current interval.
    since: Instant,
    /// Whether a line went through in the current interval.
    passed: bool,
    held_back: u64,
    name: &'static str,
    target: &'static str,
}

impl LogBudget {
    /// A budget of one line per call site per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            slots: Arc::default(),
        }
    }

    fn admit(&self, meta: &'static tracing::Metadata<'static>) -> bool {
        if *meta.level() > tracing::Level::WARN || meta.target() == LOG_BUDGET_TARGET {
            return true;
        }
        let mut slots = lock(&self.slots);
        let slot = slots.entry(meta.callsite()).or_insert_with(|| Slot {
            since: Instant::now(),
            passed: false,
            held_back: 0,
            name: meta.name(),
            target: meta.target(),
        });
        if slot.since.elapsed() >= self.interval {
            slot.since = Instant::now();
            slot.passed = false;
        }
        if slot.passed {
            slot.held_back += 1;
            false
        } else {
            slot.passed = true;
            true
        }
    }

    /// Takes what was held back since the last report: (call site name, target, count).
    fn take_report(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut slots = lock(&self.slots);
        slots
            .values_mut()
            .filter(|slot| slot.held_back > 0)
            .map(|slot| (slot.name, slot.target, std::mem::take(&mut slot.held_back)))
            .collect()
    }

    /// Starts the thread that writes the counts once per `every`.
    fn report_every(&self, every: Duration) {
        let budget = self.clone();
        let spawned = std::thread::Builder::new()
            .name("log-budget".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                for (event, target, count) in budget.take_report() {
                    tracing::warn!(
                        target: LOG_BUDGET_TARGET,
                        event,
                        from = target,
                        count,
                        "repeated log lines held back in the last interval"
                    );
                }
                let counts = std::mem::take(&mut *lock(refusals()));
                for (kind, count) in counts {
                    tracing::warn!(
                        target: LOG_BUDGET_TARGET,
                        kind,
                        count,
                        "requests refused in the last interval"
                    );
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "log budget reporter not started");
        }
    }
}

impl<S> tracing_subscriber::layer::Filter<S> for LogBudget {
    fn enabled(
        &self,
        _meta: &tracing::Metadata<'_>,
        _cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        true
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        self.admit(event.metadata())
    }
}

/// Request spans that name the route pattern (`/sessions/{id}`), never the concrete path, so a
/// session id in a URL never reaches the logs; each request ends with one access-log event.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage as _;
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "(unmatched)".to_owned());
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
        span.in_scope(|| tracing::info!(status = status.as_u16(), "request finished"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_call_site_passes_once_per_interval_and_counts_the_rest() {
        let budget = LogBudget::new(Duration::from_millis(200));
        let meta = |f: fn() -> &'static tracing::Metadata<'static>| f();
        fn warn_site() -> &'static tracing::Metadata<'static> {
            struct Cs;
            static CS: Cs = Cs;
            static META: tracing::Metadata<'static> = tracing::Metadata::new(
                "warn here",
                "some_crate",
                tracing::Level::WARN,
                None,
                None,
                None,
                tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CS)),
                tracing::metadata::Kind::EVENT,
            );
            impl tracing::callsite::Callsite for Cs {
                fn set_interest(&self, _: tracing::subscriber::Interest) {}
                fn metadata(&self) -> &tracing::Metadata<'_> {
                    &META
                }
            }
            &META
        }
        let m = meta(warn_site);
        assert!(budget.admit(m));
        for _ in 0..1000 {
            assert!(!budget.admit(m));
        }
        assert_eq!(
            budget.take_report(),
            vec![("warn here", "some_crate", 1000)]
        );
        assert!(
            budget.take_report().is_empty(),
            "each count is reported once"
        );
        assert!(!budget.admit(m), "still the same interval");
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            budget.admit(m),
            "a new interval lets one line through again"
        );
        assert!(!budget.admit(m));
        assert_eq!(budget.take_report(), vec![("warn here", "some_crate", 2)]);
    }
}
