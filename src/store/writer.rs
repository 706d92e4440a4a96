//! The writer thread both backends share. One thread per store takes the queued write jobs
//! in batches (every job queued, up to [`MAX_BATCH`]), runs each inside the batch so that an
//! error or a panic undoes that job's writes only, makes the batch durable at once, and only
//! then tells each job its outcome. It stops once the queue is closed and drained.
//!
//! A backend plugs in with a [`Backend`] (what the thread owns, and how it starts a batch)
//! and its [`Batch`] (how a job starts and ends inside the batch, and how the batch commits).

use std::sync::mpsc;

use crate::domain::error::{Error, Result};
use crate::domain::store::{ReadHint, WriteFn, WriteJob, Writer};

/// Most write jobs in one batch.
pub const MAX_BATCH: usize = 512;

/// What a backend's writer thread owns (a connection, a client), and how it starts a batch.
pub trait Backend: Send + 'static {
    /// A batch in progress, borrowing from the backend.
    type Batch<'a>: Batch
    where
        Self: 'a;

    /// Starts a batch (a transaction); an error fails every job of the batch.
    fn begin(&mut self) -> Result<Self::Batch<'_>>;
}

/// A batch of jobs in progress: one transaction.
pub trait Batch {
    /// Reads, before the batch's jobs run, what they said they will read (each job still reads
    /// it; this may only spare round trips). Does nothing by default; an error is logged and
    /// the jobs run as they would have.
    fn prefetch(&mut self, _hints: &[&ReadHint]) -> Result<()> {
        Ok(())
    }

    /// Starts a job; an error fails the job without running it.
    fn begin_job(&mut self) -> Result<()> {
        Ok(())
    }

    /// What the running job writes through.
    fn writer(&mut self) -> &mut dyn Writer;

    /// Ends the running job, whose writes gave `outcome` (a panic made an error): keeps its
    /// writes if it is `Ok`, else undoes them. Returns the job's outcome, which the end may
    /// itself turn into an error.
    fn end_job(&mut self, outcome: Result<()>) -> Result<()>;

    /// Makes the writes of the batch's jobs durable; an error fails every job of the batch.
    fn commit(self) -> Result<()>;
}

/// A running writer thread and its queue. Dropping it closes the queue, lets the thread
/// finish what is queued, and waits for it.
pub struct WriterThread {
    jobs: Option<mpsc::Sender<WriteJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriterThread {
    /// Starts the writer thread over `backend`.
    pub fn start<B: Backend>(backend: B) -> Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("weft-writer".into())
            .spawn(move || write_loop(backend, queue))
            .map_err(|e| Error::Storage(format!("cannot start the writer thread: {e}")))?;
        Ok(WriterThread { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Queues a write job; it never blocks the caller.
    /// A job the writer can no longer take is told so at once.
    pub fn submit(&self, job: WriteJob) {
        let refused = match &self.jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = refused {
            (job.done)(Err(Error::Storage("the writer stopped".into())));
        }
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued, then stop.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: takes every queued job (up to [`MAX_BATCH`]) into one batch, runs each
/// so that one job's error undoes only its own writes, commits once, then tells each job the
/// outcome.
fn write_loop<B: Backend>(mut backend: B, queue: mpsc::Receiver<WriteJob>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut batch = match backend.begin() {
            Ok(batch) => batch,
            Err(e) => {
                for job in jobs {
                    (job.done)(Err(e.clone()));
                }
                continue;
            }
        };
        let hints: Vec<&ReadHint> = jobs.iter().map(|j| &j.hint).collect();
        if let Err(e) = batch.prefetch(&hints) {
            let error = crate::domain::error::bounded(&e.to_string()).into_owned();
            tracing::warn!(%error, "reading ahead for a write batch failed");
        }
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let outcome = run_job(&mut batch, job.run);
            outcomes.push((job.done, outcome));
        }
        let committed = batch.commit();
        for (done, outcome) in outcomes {
            done(match &committed {
                Err(e) => Err(e.clone()),
                Ok(()) => outcome,
            });
        }
    }
}

/// Runs one job inside `batch`, turning a panic into an error; its writes are undone if it
/// fails or panics.
fn run_job(batch: &mut impl Batch, run: WriteFn) -> Result<()> {
    batch.begin_job()?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(batch.writer())))
        .unwrap_or_else(|_| Err(Error::Storage("a write job panicked".into())));
    batch.end_job(outcome)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::domain::call::{Call, Micros};
    use crate::domain::feedback::Feedback;
    use crate::domain::keys::ApiKey;
    use crate::domain::object::ObjectVersion;
    use crate::domain::store::CallEndFields;

    /// What the fake backend saw: files put and kept per job, and the batches committed.
    #[derive(Default)]
    struct Log {
        committed: Vec<Vec<String>>,
    }

    /// A backend keeping the files its jobs put; it fails to commit a batch holding `"bad"`.
    struct Fake(Arc<Mutex<Log>>);

    struct FakeBatch<'a> {
        log: &'a Mutex<Log>,
        kept: Vec<String>,
        job: Files,
    }

    /// The running job's writes.
    #[derive(Default)]
    struct Files(Vec<String>);

    impl Backend for Fake {
        type Batch<'a> = FakeBatch<'a>;
        fn begin(&mut self) -> Result<FakeBatch<'_>> {
            Ok(FakeBatch { log: &self.0, kept: Vec::new(), job: Files::default() })
        }
    }

    impl Batch for FakeBatch<'_> {
        fn writer(&mut self) -> &mut dyn Writer {
            &mut self.job
        }
        fn end_job(&mut self, outcome: Result<()>) -> Result<()> {
            let written = std::mem::take(&mut self.job.0);
            if outcome.is_ok() {
                self.kept.extend(written);
            }
            outcome
        }
        fn commit(self) -> Result<()> {
            if self.kept.iter().any(|f| f == "bad") {
                return Err(Error::Storage("commit failed".into()));
            }
            self.log.lock().unwrap().committed.push(self.kept);
            Ok(())
        }
    }

    fn unused<T>() -> Result<T> {
        Err(Error::Storage("not used by these tests".into()))
    }

    impl Writer for Files {
        fn put_file(&mut self, _project: &str, digest: &str, _content: &[u8]) -> Result<()> {
            self.0.push(digest.to_string());
            Ok(())
        }
        fn insert_call(&mut self, _: &Call) -> Result<()> {
            unused()
        }
        fn update_call(&mut self, _: &Call) -> Result<()> {
            unused()
        }
        fn call(&mut self, _: &str, _: &str) -> Result<Option<Call>> {
            unused()
        }
        fn call_exists(&mut self, _: &str, _: &str) -> Result<bool> {
            unused()
        }
        fn end_call(&mut self, _: &str, _: &str, _: &CallEndFields<'_>) -> Result<bool> {
            unused()
        }
        fn children(&mut self, _: &str, _: &str) -> Result<Vec<Call>> {
            unused()
        }
        fn put_object(&mut self, _: &ObjectVersion) -> Result<ObjectVersion> {
            unused()
        }
        fn delete_objects(&mut self, _: &str, _: &str, _: Option<&[String]>, _: Micros) -> Result<u64> {
            unused()
        }
        fn object_live(&mut self, _: &str, _: &str, _: &str) -> Result<bool> {
            unused()
        }
        fn add_tags(&mut self, _: &str, _: &str, _: &str, _: &[String]) -> Result<()> {
            unused()
        }
        fn remove_tags(&mut self, _: &str, _: &str, _: &str, _: &[String]) -> Result<()> {
            unused()
        }
        fn set_aliases(&mut self, _: &str, _: &str, _: &str, _: &[String]) -> Result<()> {
            unused()
        }
        fn remove_aliases(&mut self, _: &str, _: &str, _: &[String]) -> Result<()> {
            unused()
        }
        fn put_table(&mut self, _: &str, _: &str, _: &[(String, String)], _: &[String]) -> Result<()> {
            unused()
        }
        fn table_digests(&mut self, _: &str, _: &str) -> Result<Option<Vec<String>>> {
            unused()
        }
        fn missing_table_rows(&mut self, _: &str, _: &[&str]) -> Result<Vec<String>> {
            unused()
        }
        fn insert_feedback(&mut self, _: &Feedback) -> Result<()> {
            unused()
        }
        fn delete_feedback(&mut self, _: &str, _: &[String]) -> Result<u64> {
            unused()
        }
        fn insert_cost(&mut self, _: &crate::domain::costs::LlmPrice) -> Result<()> {
            unused()
        }
        fn delete_costs(&mut self, _: &str, _: &[String]) -> Result<u64> {
            unused()
        }
        fn put_key(&mut self, _: &ApiKey) -> Result<()> {
            unused()
        }
        fn revoke_key(&mut self, _: &str, _: Micros) -> Result<bool> {
            unused()
        }
        fn put_session(&mut self, _: &crate::domain::sessions::Session, _: Micros) -> Result<()> {
            unused()
        }
        fn end_session(&mut self, _: &str, _: Micros) -> Result<bool> {
            unused()
        }
        fn delete_subtree(&mut self, _: &str, _: &str, _: Micros) -> Result<u64> {
            unused()
        }
    }

    /// A job putting `files`, then failing (`Some(false)`), panicking (`Some(true)`) or not.
    fn job(files: &[&str], fails: Option<bool>, outcomes: &mpsc::Sender<(String, Result<()>)>) -> WriteJob {
        let (files, name) = (files.iter().map(|f| f.to_string()).collect::<Vec<_>>(), files.join("+"));
        let outcomes = outcomes.clone();
        WriteJob {
            hint: Default::default(),
            run: Box::new(move |w| {
                for f in &files {
                    w.put_file("e/p", f, b"")?;
                }
                match fails {
                    Some(true) => panic!("a job panics"),
                    Some(false) => Err(Error::BadRequest("a job fails".into())),
                    None => Ok(()),
                }
            }),
            done: Box::new(move |outcome| {
                let _ = outcomes.send((name, outcome));
            }),
        }
    }

    #[test]
    fn a_failing_or_panicking_job_undoes_only_its_own_writes() {
        let log = Arc::new(Mutex::new(Log::default()));
        let (tx, rx) = mpsc::channel();
        let writer = WriterThread::start(Fake(log.clone())).unwrap();
        writer.submit(job(&["a1", "a2"], None, &tx));
        writer.submit(job(&["b"], Some(true), &tx));
        writer.submit(job(&["c"], Some(false), &tx));
        writer.submit(job(&["d"], None, &tx));
        // Shutting down runs what is queued first.
        drop(writer);
        let outcomes: Vec<_> = rx.try_iter().collect();
        let names: Vec<&str> = outcomes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a1+a2", "b", "c", "d"]);
        assert!(outcomes[0].1.is_ok() && outcomes[3].1.is_ok());
        assert!(matches!(&outcomes[1].1, Err(Error::Storage(m)) if m == "a write job panicked"));
        assert!(matches!(&outcomes[2].1, Err(Error::BadRequest(_))));
        let committed: Vec<String> = log.lock().unwrap().committed.concat();
        assert_eq!(committed, ["a1", "a2", "d"]);
    }

    #[test]
    fn jobs_are_told_of_a_failed_commit_and_a_stopped_writer() {
        let log = Arc::new(Mutex::new(Log::default()));
        let (tx, rx) = mpsc::channel();
        let mut writer = WriterThread::start(Fake(log.clone())).unwrap();
        writer.submit(job(&["bad"], None, &tx));
        let (name, outcome) = rx.recv().unwrap();
        assert_eq!(name, "bad");
        assert!(matches!(outcome, Err(Error::Storage(m)) if m == "commit failed"));
        assert!(log.lock().unwrap().committed.is_empty());
        drop(writer.jobs.take());
        writer.submit(job(&["late"], None, &tx));
        assert!(matches!(rx.recv().unwrap(), (_, Err(Error::Storage(m))) if m == "the writer stopped"));
    }
}
