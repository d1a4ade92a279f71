//! How many connections the server holds, from whom, and how slowly a request body may come:
//! the rules that keep idle or trickling sockets from making the archive unreachable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Counts open connections per client address and in all, and refuses beyond either cap.
#[derive(Debug)]
pub struct ConnectionGate {
    per_address: usize,
    total: usize,
    open: HashMap<IpAddr, usize>,
    open_total: usize,
    /// Addresses that carry many clients' connections (trusted reverse proxies): only the
    /// total cap applies to them.
    uncapped: Vec<ipnet::IpNet>,
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateRefusal {
    /// This address already holds its share.
    PerAddress,
    /// The server holds as many connections as it may.
    Total,
}

impl ConnectionGate {
    /// Caps of at least one each.
    pub fn new(per_address: usize, total: usize) -> ConnectionGate {
        ConnectionGate {
            per_address: per_address.max(1),
            total: total.max(1),
            open: HashMap::new(),
            open_total: 0,
            uncapped: Vec::new(),
        }
    }

    /// Connections from these networks (trusted reverse proxies, each carrying many clients)
    /// count in all but not per address.
    pub fn without_address_cap_for(mut self, networks: Vec<ipnet::IpNet>) -> ConnectionGate {
        self.uncapped = networks;
        self
    }

    /// Takes a connection from `peer`, or says which cap it would pass.
    pub fn admit(&mut self, peer: IpAddr) -> Result<(), GateRefusal> {
        if self.open_total >= self.total {
            return Err(GateRefusal::Total);
        }
        let held = self.open.entry(peer).or_insert(0);
        if *held >= self.per_address && !self.uncapped.iter().any(|net| net.contains(&peer)) {
            return Err(GateRefusal::PerAddress);
        }
        *held += 1;
        self.open_total += 1;
        Ok(())
    }

    /// A connection `admit` took has closed.
    pub fn release(&mut self, peer: IpAddr) {
        if let Some(held) = self.open.get_mut(&peer) {
            *held -= 1;
            self.open_total -= 1;
            if *held == 0 {
                self.open.remove(&peer);
            }
        }
    }

    pub fn open_total(&self) -> usize {
        self.open_total
    }
}

/// How long a request body may take: a grace period, extended for every `min_rate` bytes per
/// second received (as Apache's mod_reqtimeout does). A body trickled one byte at a time runs
/// out of time after the grace period; a large upload at any useful speed never does.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub grace: Duration,
    pub min_bytes_per_sec: u64,
}

impl BodyPace {
    /// Time from the first poll of the body within which `received` bytes must have arrived
    /// for the next one to be waited for.
    pub fn allowed(&self, received: u64) -> Duration {
        let earned = received.checked_div(self.min_bytes_per_sec).unwrap_or(u64::MAX / 4);
        self.grace.saturating_add(Duration::from_secs(earned))
    }
}

/// What the server may hold open, from the process's open-file limit: DIMSE and the database
/// keep their share whatever HTTP clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// HTTP connections at once.
    pub http: usize,
    /// DIMSE connections at once (associations and those still negotiating).
    pub dimse: usize,
}

/// Files the process keeps open whatever the traffic: database connections, logs, the audit
/// log, the listeners, the runtime's own descriptors, blobs being written in the background.
pub const BASE_OPEN_FILES: u64 = 48;
/// Descriptors one connection may hold: its socket and a file it reads or writes (a spooled
/// part, a blob being served, a C-MOVE's outgoing association).
pub const FILES_PER_CONNECTION: u64 = 2;

impl ConnectionBudget {
    /// Splits `open_files` between HTTP (up to `http_wanted` connections) and DIMSE (up to
    /// `dimse_wanted`): DIMSE gets what it asks for up to a third of what is left after the base,
    /// HTTP the rest. At least one connection each, so a tiny limit still serves.
    pub fn plan(open_files: u64, http_wanted: usize, dimse_wanted: usize) -> ConnectionBudget {
        let spare = open_files.saturating_sub(BASE_OPEN_FILES);
        let dimse_files = (dimse_wanted as u64 * FILES_PER_CONNECTION).min(spare / 3);
        let http_files = spare - dimse_files;
        let http = ((http_files / FILES_PER_CONNECTION) as usize).min(http_wanted);
        let dimse = (dimse_files / FILES_PER_CONNECTION) as usize;
        ConnectionBudget { http: http.max(1), dimse: dimse.max(1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn one_address_cannot_take_everything() {
        let mut gate = ConnectionGate::new(2, 3);
        assert_eq!(gate.admit(ip(1)), Ok(()));
        assert_eq!(gate.admit(ip(1)), Ok(()));
        assert_eq!(gate.admit(ip(1)), Err(GateRefusal::PerAddress));
        assert_eq!(gate.admit(ip(2)), Ok(()));
        assert_eq!(gate.admit(ip(3)), Err(GateRefusal::Total));
        gate.release(ip(1));
        assert_eq!(gate.admit(ip(3)), Ok(()));
        assert_eq!(gate.open_total(), 3);
    }

    #[test]
    fn a_trusted_proxy_is_held_only_to_the_total() {
        let mut gate = ConnectionGate::new(1, 4).without_address_cap_for(vec!["10.0.0.1/32".parse().unwrap()]);
        assert_eq!(gate.admit(ip(1)), Ok(()));
        assert_eq!(gate.admit(ip(1)), Ok(()));
        assert_eq!(gate.admit(ip(2)), Ok(()));
        assert_eq!(gate.admit(ip(2)), Err(GateRefusal::PerAddress));
        assert_eq!(gate.admit(ip(1)), Ok(()));
        assert_eq!(gate.admit(ip(1)), Err(GateRefusal::Total));
    }

    #[test]
    fn releasing_an_address_never_seen_changes_nothing() {
        let mut gate = ConnectionGate::new(1, 1);
        gate.release(ip(9));
        assert_eq!(gate.admit(ip(1)), Ok(()));
        gate.release(ip(1));
        gate.release(ip(1));
        assert_eq!(gate.open_total(), 0);
        assert_eq!(gate.admit(ip(2)), Ok(()));
    }

    #[test]
    fn a_trickled_body_runs_out_of_time_and_a_real_upload_does_not() {
        let pace = BodyPace { grace: Duration::from_secs(20), min_bytes_per_sec: 1000 };
        // One byte every 5 s: after 25 s, 5 bytes have earned nothing beyond the grace.
        assert!(pace.allowed(5) < Duration::from_secs(25));
        // 100 MB at 1 MB/s take 100 s; the allowance is far larger.
        assert!(pace.allowed(100_000_000) > Duration::from_secs(100));
        let unbounded = BodyPace { grace: Duration::from_secs(1), min_bytes_per_sec: 0 };
        assert!(unbounded.allowed(0) > Duration::from_secs(1_000_000));
    }

    #[test]
    fn dimse_and_the_database_keep_their_share_of_open_files() {
        // The default limit of 1 024: DIMSE keeps its 128 connections, HTTP gets the rest.
        let budget = ConnectionBudget::plan(1024, 512, 128);
        assert_eq!(budget.dimse, 128);
        assert_eq!(budget.http, (1024 - 48 - 256) / 2);
        // A generous limit: each gets what it asked.
        assert_eq!(ConnectionBudget::plan(65_536, 512, 128), ConnectionBudget { http: 512, dimse: 128 });
        // A tiny limit still serves one of each.
        assert_eq!(ConnectionBudget::plan(10, 512, 128), ConnectionBudget { http: 1, dimse: 1 });
        let small = ConnectionBudget::plan(128, 512, 128);
        assert!(small.http * 2 + small.dimse * 2 + 48 <= 128, "{small:?}");
    }
}
