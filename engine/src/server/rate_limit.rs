//! Per-client rate limits on events: a token bucket for each client (its
//! name when the access check knows it, its address otherwise), so that one
//! runaway caller gets `RESOURCE_EXHAUSTED` for its excess instead of
//! taking the evaluation threads from everyone else. Events are counted,
//! not calls: one `EvaluateStream` can carry millions.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tonic::Status;

use crate::access::Grant;

/// A sustained rate and the burst above it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Events per second, sustained.
    pub per_second: f64,
    /// Events that may arrive at once after a quiet spell.
    pub burst: f64,
}

/// Who a bucket belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A client the access check named.
    Named(Arc<str>),
    /// A caller of an open data plane, by its address.
    Address(IpAddr),
    /// A caller whose address is unknown (not over TCP).
    Unknown,
}

impl ClientKey {
    /// The key of a request's caller.
    pub fn of<T>(request: &tonic::Request<T>) -> ClientKey {
        if let Some(grant) = request.extensions().get::<Grant>() {
            return ClientKey::Named(grant.identity.clone());
        }
        request
            .remote_addr()
            .map_or(ClientKey::Unknown, |addr| ClientKey::Address(addr.ip()))
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::Named(name) => write!(f, "client `{name}`"),
            ClientKey::Address(ip) => write!(f, "caller {ip}"),
            ClientKey::Unknown => f.write_str("this caller"),
        }
    }
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// How many buckets may exist before idle ones are dropped: callers of an
/// open data plane are many, and a bucket per address must not grow
/// without bound.
const MAX_IDLE_BUCKETS: usize = 100_000;

/// The limits, and a bucket per client seen.
pub struct RateLimits {
    default: Option<Rate>,
    per_client: std::collections::HashMap<Arc<str>, Rate>,
    buckets: DashMap<ClientKey, Bucket>,
    /// Events refused, for the metrics.
    refused: AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("default", &self.default)
            .field("per_client", &self.per_client)
            .finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    /// No limits.
    fn default() -> Self {
        RateLimits::new(None, Default::default())
    }
}

impl RateLimits {
    /// `default` for every caller (`None`: unlimited) and the named
    /// clients' own rates.
    pub fn new(
        default: Option<Rate>,
        per_client: std::collections::HashMap<Arc<str>, Rate>,
    ) -> Self {
        RateLimits {
            default,
            per_client,
            buckets: DashMap::new(),
            refused: AtomicU64::new(0),
        }
    }

    fn rate_of(&self, client: &ClientKey) -> Option<Rate> {
        match client {
            ClientKey::Named(name) => self.per_client.get(name).copied().or(self.default),
            _ => self.default,
        }
    }

    /// Take up to `wanted` events from `client`'s bucket: how many may be
    /// evaluated now (the first that many; the rest are refused).
    pub fn take(&self, client: &ClientKey, wanted: usize) -> usize {
        self.take_at(client, wanted, Instant::now())
    }

    fn take_at(&self, client: &ClientKey, wanted: usize, now: Instant) -> usize {
        let Some(rate) = self.rate_of(client) else {
            return wanted;
        };
        if self.buckets.len() > MAX_IDLE_BUCKETS {
            self.drop_full_buckets(now);
        }
        let mut bucket = self.buckets.entry(client.clone()).or_insert(Bucket {
            tokens: rate.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
        bucket.refilled = now;
        let granted = (bucket.tokens.floor().max(0.0) as usize).min(wanted);
        bucket.tokens -= granted as f64;
        let refused = wanted - granted;
        if refused > 0 {
            self.refused.fetch_add(refused as u64, Ordering::Relaxed);
        }
        granted
    }

    /// Forget buckets that have refilled: they hold nothing a new bucket
    /// would not.
    fn drop_full_buckets(&self, now: Instant) {
        self.buckets.retain(|client, bucket| {
            let Some(rate) = self.rate_of(client) else {
                return false;
            };
            let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
            bucket.tokens + elapsed * rate.per_second < rate.burst
        });
    }

    /// Events refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// `RESOURCE_EXHAUSTED` for `client`'s refused events, saying when one
    /// more would be admitted. The `grpc-retry-pushback-ms` metadata is
    /// what gRPC's own retry policy reads.
    pub fn refusal(&self, client: &ClientKey) -> Status {
        let rate = self.rate_of(client).map_or(0.0, |r| r.per_second);
        let wait = if rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::from_secs(1)
        };
        let mut status = Status::resource_exhausted(format!(
            "{client} is over its rate limit of {rate} events/s; retry after {} ms",
            wait.as_millis().max(1)
        ));
        if let Ok(value) = wait.as_millis().max(1).to_string().parse() {
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", value);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> ClientKey {
        ClientKey::Named(name.into())
    }

    #[test]
    fn a_bucket_grants_its_burst_then_its_rate() {
        let limits = RateLimits::new(
            Some(Rate {
                per_second: 100.0,
                burst: 10.0,
            }),
            Default::default(),
        );
        let start = Instant::now();
        assert_eq!(limits.take_at(&named("a"), 25, start), 10);
        assert_eq!(limits.take_at(&named("a"), 1, start), 0);
        // 50 ms later: 5 more.
        let later = start + Duration::from_millis(50);
        assert_eq!(limits.take_at(&named("a"), 25, later), 5);
        // Another client has a bucket of its own.
        assert_eq!(limits.take_at(&named("b"), 25, later), 10);
        assert_eq!(limits.refused(), 15 + 1 + 20 + 15);
        // A long quiet spell refills no more than the burst.
        let much_later = later + Duration::from_secs(60);
        assert_eq!(limits.take_at(&named("a"), 1000, much_later), 10);
    }

    #[test]
    fn a_client_s_own_rate_overrides_the_default_and_no_rate_is_no_limit() {
        let per_client = [(
            Arc::<str>::from("batch"),
            Rate {
                per_second: 1.0,
                burst: 2.0,
            },
        )]
        .into_iter()
        .collect();
        let limited = RateLimits::new(None, per_client);
        let now = Instant::now();
        assert_eq!(limited.take_at(&named("batch"), 5, now), 2);
        assert_eq!(limited.take_at(&named("gateway"), 5000, now), 5000);
        let unlimited = RateLimits::default();
        assert_eq!(unlimited.take_at(&named("batch"), 5000, now), 5000);
    }

    #[test]
    fn the_refusal_says_who_and_when_to_retry() {
        let limits = RateLimits::new(
            Some(Rate {
                per_second: 4.0,
                burst: 1.0,
            }),
            Default::default(),
        );
        let status = limits.refusal(&named("gateway"));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("client `gateway`"),
            "{}",
            status.message()
        );
        assert_eq!(
            status.metadata().get("grpc-retry-pushback-ms").unwrap(),
            "250"
        );
    }

    #[test]
    fn idle_buckets_do_not_pile_up() {
        let limits = RateLimits::new(
            Some(Rate {
                per_second: 1000.0,
                burst: 1.0,
            }),
            Default::default(),
        );
        let start = Instant::now();
        for i in 0..=MAX_IDLE_BUCKETS as u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            limits.take_at(&ClientKey::Address(ip), 1, start);
        }
        assert_eq!(limits.buckets.len(), MAX_IDLE_BUCKETS + 1);
        // A second later every bucket has refilled: the next take sweeps.
        limits.take_at(&named("new"), 1, start + Duration::from_secs(1));
        assert_eq!(limits.buckets.len(), 1);
    }
}
