//! Refusals of clients that hold no credential (a wrong API key, a rejected association): the
//! first refusal of an address in a window is recorded at once, the others are only counted
//! and recorded as one summary when the window ends. Nobody without a key can grow the audit
//! chain faster than one entry per address, kind of refusal and window, and the ledger itself
//! is bounded (addresses beyond its capacity are counted together).

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::net::IpAddr;

/// Where refusals come from: an IPv4 address, an IPv6 /64 (one host's usual allocation), or
/// every address beyond the ledger's capacity together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Address(IpAddr),
    Overflow,
}

impl Source {
    fn of(address: IpAddr) -> Source {
        match address {
            IpAddr::V4(_) => Source::Address(address),
            IpAddr::V6(v6) => {
                let mut bits = u128::from(v6);
                bits &= !0u128 << 64;
                Source::Address(IpAddr::V6(bits.into()))
            }
        }
    }

    /// The address to record, none for the overflow.
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            Source::Address(a) => Some(*a),
            Source::Overflow => None,
        }
    }
}

/// One kind of refusal: what was asked for and why it was refused (never a personal value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Refusal {
    pub object: &'static str,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first of its window: record it.
    Record,
    /// Counted into the window's summary.
    Counted,
}

/// Refusals counted beyond the first of a window, to be recorded as one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub source: Source,
    pub refusal: Refusal,
    pub count: u64,
    pub since: DateTime<Utc>,
}

#[derive(Debug)]
struct Window {
    opened: DateTime<Utc>,
    counted: u64,
}

#[derive(Debug)]
pub struct RefusalLedger {
    window: Duration,
    capacity: usize,
    windows: HashMap<(Source, Refusal), Window>,
}

impl RefusalLedger {
    pub fn new(window: Duration, capacity: usize) -> RefusalLedger {
        RefusalLedger { window, capacity: capacity.max(1), windows: HashMap::new() }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Decides one refusal; also hands back the summary of this source's window if it just ended.
    pub fn refuse(&mut self, now: DateTime<Utc>, address: IpAddr, refusal: Refusal) -> (Verdict, Option<Summary>) {
        let mut source = Source::of(address);
        if !self.windows.contains_key(&(source, refusal)) && self.windows.len() >= self.capacity {
            source = Source::Overflow;
        }
        let window = self.window;
        match self.windows.get_mut(&(source, refusal)) {
            Some(open) if now < open.opened + window => {
                open.counted += 1;
                (Verdict::Counted, None)
            }
            Some(ended) => {
                let summary = summary(source, refusal, ended);
                *ended = Window { opened: now, counted: 0 };
                (Verdict::Record, summary)
            }
            None => {
                self.windows.insert((source, refusal), Window { opened: now, counted: 0 });
                (Verdict::Record, None)
            }
        }
    }

    /// Closes every window that has ended (all of them when `all`), handing back their summaries.
    pub fn flush(&mut self, now: DateTime<Utc>, all: bool) -> Vec<Summary> {
        let window = self.window;
        let mut summaries = Vec::new();
        self.windows.retain(|(source, refusal), open| {
            let ended = all || now >= open.opened + window;
            if ended && let Some(s) = summary(*source, *refusal, open) {
                summaries.push(s);
            }
            !ended
        });
        summaries
    }
}

fn summary(source: Source, refusal: Refusal, window: &Window) -> Option<Summary> {
    (window.counted > 0).then_some(Summary { source, refusal, count: window.counted, since: window.opened })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Refusal = Refusal { object: "dicom-web", reason: "wrong API key" };
    const AE: Refusal = Refusal { object: "dimse", reason: "unknown calling AE title" };

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_refusal_of_a_window_is_recorded_the_rest_summarised() {
        let mut ledger = RefusalLedger::new(Duration::seconds(60), 100);
        assert_eq!(ledger.refuse(t(0), ip("10.0.0.1"), KEY), (Verdict::Record, None));
        for s in 1..1000 {
            assert_eq!(ledger.refuse(t(s % 60), ip("10.0.0.1"), KEY).0, Verdict::Counted);
        }
        // Another address and another kind have windows of their own.
        assert_eq!(ledger.refuse(t(5), ip("10.0.0.2"), KEY).0, Verdict::Record);
        assert_eq!(ledger.refuse(t(5), ip("10.0.0.1"), AE).0, Verdict::Record);
        // The next refusal after the window is recorded with the summary of the window before.
        let (verdict, summary) = ledger.refuse(t(61), ip("10.0.0.1"), KEY);
        assert_eq!(verdict, Verdict::Record);
        let summary = summary.unwrap();
        assert_eq!((summary.count, summary.since, summary.source), (999, t(0), Source::Address(ip("10.0.0.1"))));
    }

    #[test]
    fn flush_closes_ended_windows_only_unless_all() {
        let mut ledger = RefusalLedger::new(Duration::seconds(60), 100);
        ledger.refuse(t(0), ip("10.0.0.1"), KEY);
        ledger.refuse(t(1), ip("10.0.0.1"), KEY);
        ledger.refuse(t(30), ip("10.0.0.2"), KEY);
        ledger.refuse(t(31), ip("10.0.0.2"), KEY);
        ledger.refuse(t(31), ip("10.0.0.3"), KEY);
        let ended = ledger.flush(t(60), false);
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].count, ended[0].source), (1, Source::Address(ip("10.0.0.1"))));
        let rest = ledger.flush(t(61), true);
        assert_eq!(rest.len(), 1, "a window with only its first refusal has nothing to summarise");
        assert!(ledger.flush(t(1000), true).is_empty());
    }

    #[test]
    fn the_ledger_is_bounded_and_ipv6_counts_by_64() {
        let mut ledger = RefusalLedger::new(Duration::seconds(60), 3);
        for n in 0..3 {
            assert_eq!(ledger.refuse(t(0), ip(&format!("10.0.0.{n}")), KEY).0, Verdict::Record);
        }
        assert_eq!(ledger.refuse(t(0), ip("10.0.1.1"), KEY).0, Verdict::Record, "the overflow's first");
        for n in 0..500 {
            assert_eq!(ledger.refuse(t(1), ip(&format!("10.1.{}.{}", n / 256, n % 256)), KEY).0, Verdict::Counted);
        }
        let summaries = ledger.flush(t(60), true);
        assert!(summaries.iter().any(|s| s.source == Source::Overflow && s.count == 500));

        let mut ledger = RefusalLedger::new(Duration::seconds(60), 3);
        assert_eq!(ledger.refuse(t(0), ip("2001:db8::1"), KEY).0, Verdict::Record);
        assert_eq!(ledger.refuse(t(0), ip("2001:db8::ffff:2"), KEY).0, Verdict::Counted, "same /64");
        assert_eq!(ledger.refuse(t(0), ip("2001:db8:0:1::1"), KEY).0, Verdict::Record, "another /64");
    }
}
