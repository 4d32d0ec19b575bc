//! One budget for the results Flightdeck holds in memory outside the cache:
//! cache fills in progress, the read-ahead of parked queries, the answers
//! of statements that may write. Every such buffer reserves its bytes here
//! first; when the budget is spent the request fails with a clear
//! RESOURCE_EXHAUSTED instead of the process running out of memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The budget; cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: u64,
    used: AtomicU64,
    /// The gauge of the bytes reserved.
    reserved_gauge: &'static str,
}

/// Bytes that did not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "memory budget for buffered results is spent ({used} of {limit} bytes in use, {requested} more asked): \
     retry later, or ask for less"
)]
pub struct Exhausted {
    pub requested: u64,
    pub used: u64,
    pub limit: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes for results buffered outside the cache.
    pub fn new(limit: u64) -> Self {
        Self::with_gauges(limit, "flightdeck_memory_budget_bytes", "flightdeck_memory_reserved_bytes")
    }

    /// A budget of `limit` bytes, published as the gauges `budget` (its
    /// size) and `reserved` (bytes reserved now).
    pub fn with_gauges(limit: u64, budget: &'static str, reserved: &'static str) -> Self {
        metrics::gauge!(budget).set(limit as f64);
        metrics::gauge!(reserved).set(0.0);
        MemoryBudget { inner: Arc::new(Inner { limit, used: AtomicU64::new(0), reserved_gauge: reserved }) }
    }

    /// An empty reservation, to grow as data arrives.
    pub fn reservation(&self) -> Reservation {
        Reservation { budget: self.clone(), bytes: 0 }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::SeqCst)
    }

    /// The budget's size.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    fn take(&self, n: u64) -> Result<(), Exhausted> {
        let mut used = self.inner.used.load(Ordering::SeqCst);
        loop {
            let next = used.saturating_add(n);
            if next > self.inner.limit {
                metrics::counter!("flightdeck_memory_exhausted_total").increment(1);
                return Err(Exhausted { requested: n, used, limit: self.inner.limit });
            }
            match self.inner.used.compare_exchange_weak(used, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    metrics::gauge!(self.inner.reserved_gauge).set(next as f64);
                    return Ok(());
                }
                Err(now) => used = now,
            }
        }
    }

    fn give_back(&self, n: u64) {
        let now = self.inner.used.fetch_sub(n, Ordering::SeqCst) - n;
        metrics::gauge!(self.inner.reserved_gauge).set(now as f64);
    }
}

/// Bytes held against the budget, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: u64,
}

impl Reservation {
    /// Reserves `n` more bytes, or fails leaving the reservation as it was.
    pub fn grow(&mut self, n: u64) -> Result<(), Exhausted> {
        self.budget.take(n)?;
        self.bytes += n;
        Ok(())
    }

    /// Holds exactly `n` bytes: grows (or fails leaving the reservation as
    /// it was), or gives the surplus back.
    pub fn resize(&mut self, n: u64) -> Result<(), Exhausted> {
        if n > self.bytes {
            return self.grow(n - self.bytes);
        }
        self.budget.give_back(self.bytes - n);
        self.bytes = n;
        Ok(())
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.give_back(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation();
        a.grow(60).unwrap();
        let mut b = budget.reservation();
        assert_eq!(b.grow(50), Err(Exhausted { requested: 50, used: 60, limit: 100 }));
        b.grow(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        b.grow(60).unwrap();
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let budget = MemoryBudget::new(1000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for _ in 0..1000 {
                        let mut r = budget.reservation();
                        if r.grow(7).is_ok() {
                            assert!(budget.used() <= 1000);
                            held.push(r);
                        }
                        if held.len() > 20 {
                            held.clear();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(budget.used(), 0);
    }
}
