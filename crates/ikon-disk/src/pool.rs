//! A pool of worker threads for compressing writers: jobs go in in guest order, results come
//! out in the same order, and the writer never waits for a whole batch. Reading the source,
//! compressing on every core and writing the output overlap, where a batch-and-join scheme
//! leaves cores idle at the end of every batch.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Jobs queued or running per worker before [`OrderedPool::submit`] waits for results.
const IN_FLIGHT_PER_WORKER: usize = 4;

/// Workers applying one function to jobs; results are handed back in submission order.
pub struct OrderedPool<J, T> {
    jobs: Option<SyncSender<(u64, J)>>,
    results: Receiver<(u64, Result<T>)>,
    workers: Vec<JoinHandle<()>>,
    submitted: u64,
    emitted: u64,
    early: BTreeMap<u64, Result<T>>,
    max_in_flight: u64,
}

impl<J: Send + 'static, T: Send + 'static> OrderedPool<J, T> {
    /// Start `threads` workers (at least one) running `f`.
    pub fn new<F>(threads: usize, f: F) -> Result<Self>
    where
        F: Fn(J) -> Result<T> + Send + Sync + 'static,
    {
        let threads = threads.max(1);
        let depth = threads * IN_FLIGHT_PER_WORKER;
        let (job_tx, job_rx) = mpsc::sync_channel::<(u64, J)>(depth);
        let (res_tx, res_rx) = mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let f = Arc::new(f);
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let (job_rx, res_tx, f) = (Arc::clone(&job_rx), res_tx.clone(), Arc::clone(&f));
            let spawned = std::thread::Builder::new()
                .name(format!("ikon-compress-{i}"))
                .spawn(move || loop {
                    let next = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, job)) = next else { return };
                    // A panicking job still answers, so the writer never waits for it forever.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(job)))
                        .unwrap_or_else(|_| Err(Error::invalid("a compression job panicked")));
                    if res_tx.send((seq, r)).is_err() {
                        return;
                    }
                })
                .map_err(|e| Error::io(e, "starting a compression thread"))?;
            workers.push(spawned);
        }
        Ok(OrderedPool {
            jobs: Some(job_tx),
            results: res_rx,
            workers,
            submitted: 0,
            emitted: 0,
            early: BTreeMap::new(),
            max_in_flight: u64::try_from(depth).unwrap_or(u64::MAX),
        })
    }

    /// Queue `job`; returns the results that are ready, in order (waiting only while too many
    /// jobs are in flight).
    pub fn submit(&mut self, job: J) -> Result<Vec<T>> {
        let tx = self
            .jobs
            .as_ref()
            .ok_or_else(|| Error::invalid("compression pool already finished"))?;
        tx.send((self.submitted, job))
            .map_err(|_| Error::invalid("compression workers stopped"))?;
        self.submitted += 1;
        let mut ready = Vec::new();
        while let Ok((seq, r)) = self.results.try_recv() {
            self.early.insert(seq, r);
        }
        self.take_ready(&mut ready)?;
        while self.submitted - self.emitted >= self.max_in_flight {
            self.wait_one()?;
            self.take_ready(&mut ready)?;
        }
        Ok(ready)
    }

    /// Queues every job of `jobs` in order; returns the results ready by the end, in order.
    pub fn submit_all(&mut self, jobs: impl IntoIterator<Item = J>) -> Result<Vec<T>> {
        let mut ready = Vec::new();
        for job in jobs {
            ready.extend(self.submit(job)?);
        }
        Ok(ready)
    }

    /// Wait for every queued job; returns the remaining results in order.
    pub fn drain(&mut self) -> Result<Vec<T>> {
        let mut ready = Vec::new();
        self.take_ready(&mut ready)?;
        while self.emitted < self.submitted {
            self.wait_one()?;
            self.take_ready(&mut ready)?;
        }
        Ok(ready)
    }

    fn wait_one(&mut self) -> Result<()> {
        let (seq, r) = self
            .results
            .recv()
            .map_err(|_| Error::invalid("compression workers stopped"))?;
        self.early.insert(seq, r);
        Ok(())
    }

    fn take_ready(&mut self, ready: &mut Vec<T>) -> Result<()> {
        while let Some(r) = self.early.remove(&self.emitted) {
            self.emitted += 1;
            ready.push(r?);
        }
        Ok(())
    }
}

impl<J, T> Drop for OrderedPool<J, T> {
    fn drop(&mut self) {
        // Closing the job queue ends every worker once it finishes its current job.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::OrderedPool;
    use crate::error::Error;

    #[test]
    fn results_come_back_in_order() {
        let mut pool = OrderedPool::new(3, |n: u64| {
            // Later jobs finish first.
            std::thread::sleep(std::time::Duration::from_micros(200 - n % 200));
            Ok(n * 2)
        })
        .unwrap();
        let mut out = Vec::new();
        for n in 0..500u64 {
            out.extend(pool.submit(n).unwrap());
        }
        out.extend(pool.drain().unwrap());
        assert_eq!(out, (0..500).map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn instant_jobs_never_stall() {
        // Results often arrive before the next submission looks for them.
        for threads in 1..4 {
            let mut pool = OrderedPool::new(threads, |n: u64| Ok(n)).unwrap();
            let mut count = 0u64;
            for n in 0..20_000u64 {
                for r in pool.submit(n).unwrap() {
                    assert_eq!(r, count);
                    count += 1;
                }
            }
            for r in pool.drain().unwrap() {
                assert_eq!(r, count);
                count += 1;
            }
            assert_eq!(count, 20_000);
        }
    }

    #[test]
    fn an_error_is_returned_in_its_place() {
        let mut pool = OrderedPool::new(2, |n: u32| {
            if n == 7 {
                Err(Error::invalid("seven"))
            } else {
                Ok(n)
            }
        })
        .unwrap();
        let mut got = Vec::new();
        let mut err = None;
        for n in 0..20 {
            match pool.submit(n) {
                Ok(r) => got.extend(r),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let err = err.or_else(|| pool.drain().err()).unwrap();
        assert!(err.to_string().contains("seven"));
        assert!(got.iter().all(|n| *n < 7));
    }
}
