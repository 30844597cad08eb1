//! Function logs: a bounded ring buffer per function, and a broadcast for followers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use faas_core::model::{LogMessage, LogRequest};
use faas_watchdog::{LogSink, LogStream};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::broadcast;

/// How many lines a follower may fall behind before it misses some.
const FOLLOW_CAPACITY: usize = 256;

struct Entry {
    instance: Arc<str>,
    timestamp: DateTime<Utc>,
    text: String,
}

struct Ring {
    lines: VecDeque<Arc<Entry>>,
    bytes: usize,
    /// Created when the first follower subscribes, so idle functions pay nothing for it.
    follow: Option<broadcast::Sender<Arc<Entry>>>,
    closed: bool,
}

/// The logs of one function: every replica's output lines, oldest first, bounded in lines and in
/// bytes (the oldest lines go first).
pub(crate) struct LogBook {
    name: String,
    namespace: String,
    max_lines: usize,
    max_bytes: usize,
    ring: Mutex<Ring>,
}

impl fmt::Debug for LogBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogBook")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("max_lines", &self.max_lines)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl LogBook {
    pub(crate) fn new(name: &str, namespace: &str, max_lines: usize, max_bytes: usize) -> Self {
        LogBook {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
            ring: Mutex::new(Ring {
                lines: VecDeque::new(),
                bytes: 0,
                follow: None,
                closed: false,
            }),
        }
    }

    /// Records one line of `instance`.
    pub(crate) fn push(&self, instance: &Arc<str>, text: String) {
        let cost = text.len() + instance.len() + 64;
        let entry = Arc::new(Entry {
            instance: instance.clone(),
            timestamp: Utc::now(),
            text,
        });
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.closed {
            return;
        }
        while !ring.lines.is_empty()
            && (ring.lines.len() >= self.max_lines || ring.bytes + cost > self.max_bytes)
        {
            if let Some(old) = ring.lines.pop_front() {
                ring.bytes -= old.text.len() + old.instance.len() + 64;
            }
        }
        ring.bytes += cost;
        ring.lines.push_back(entry.clone());
        // Sent under the lock, so a new follower sees each line exactly once: in its history or
        // from the channel.
        if let Some(follow) = &ring.follow
            && follow.send(entry).is_err()
        {
            ring.follow = None;
        }
    }

    /// Ends every follower's stream; later lines are dropped (the function was deleted).
    pub(crate) fn close(&self) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.closed = true;
        ring.follow = None;
    }

    /// The lines `request` asks for: the history (filtered by instance and since, then its last
    /// `tail` lines) and, with `follow`, every later line until the function goes away.
    pub(crate) fn read(
        &self,
        request: &LogRequest,
    ) -> BoxStream<'static, faas_core::Result<LogMessage>> {
        let instance: Option<Arc<str>> = request.instance.as_deref().map(Arc::from);
        let since = request.since;
        let keep = move |e: &Entry| {
            instance.as_deref().is_none_or(|i| *e.instance == *i)
                && since.is_none_or(|s| e.timestamp >= s)
        };
        let (history, receiver) = {
            let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            let mut history: Vec<Arc<Entry>> =
                ring.lines.iter().filter(|e| keep(e)).cloned().collect();
            if let Some(tail) = request.tail.filter(|t| *t >= 0) {
                let tail = usize::try_from(tail).unwrap_or(usize::MAX);
                history.drain(..history.len().saturating_sub(tail));
            }
            let receiver = match (request.follow, ring.closed) {
                (true, false) => Some(
                    ring.follow
                        .get_or_insert_with(|| broadcast::channel(FOLLOW_CAPACITY).0)
                        .subscribe(),
                ),
                _ => None,
            };
            (history, receiver)
        };
        let name: Arc<str> = Arc::from(self.name.as_str());
        let namespace: Arc<str> = Arc::from(self.namespace.as_str());
        let message = move |e: Arc<Entry>| {
            Ok(LogMessage {
                name: name.to_string(),
                namespace: namespace.to_string(),
                instance: e.instance.to_string(),
                timestamp: e.timestamp,
                text: e.text.clone(),
            })
        };
        let history = stream::iter(history);
        let live = stream::unfold(receiver, move |receiver| {
            let keep = keep.clone();
            async move {
                let mut receiver = receiver?;
                loop {
                    match receiver.recv().await {
                        Ok(entry) if keep(&entry) => return Some((entry, Some(receiver))),
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        history.chain(live).map(message).boxed()
    }
}

/// The [`LogSink`] of one replica's watchdog: lines go to the function's [`LogBook`].
pub(crate) struct ReplicaSink {
    pub(crate) book: Arc<LogBook>,
    pub(crate) instance: Arc<str>,
}

impl fmt::Debug for ReplicaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaSink")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl LogSink for ReplicaSink {
    fn line(&self, _stream: LogStream, line: &[u8]) {
        self.book
            .push(&self.instance, String::from_utf8_lossy(line).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn texts(messages: Vec<faas_core::Result<LogMessage>>) -> Vec<String> {
        messages.into_iter().map(|m| m.unwrap().text).collect()
    }

    #[tokio::test]
    async fn bounded_in_lines_and_bytes() {
        let book = LogBook::new("f", "ns", 3, 1 << 20);
        let a: Arc<str> = Arc::from("f-1");
        for i in 0..5 {
            book.push(&a, format!("line {i}"));
        }
        let all = texts(book.read(&LogRequest::new("f", "ns")).collect().await);
        assert_eq!(all, ["line 2", "line 3", "line 4"]);

        let small = LogBook::new("f", "ns", 100, 200);
        for i in 0..10 {
            small.push(&a, format!("{i}{}", "x".repeat(50)));
        }
        let kept = texts(small.read(&LogRequest::new("f", "ns")).collect().await);
        assert!(kept.len() < 10 && !kept.is_empty(), "{kept:?}");
        assert!(kept.last().unwrap().starts_with('9'));
    }

    #[tokio::test]
    async fn tail_instance_since_and_follow() {
        let book = Arc::new(LogBook::new("f", "ns", 100, 1 << 20));
        let a: Arc<str> = Arc::from("f-1");
        let b: Arc<str> = Arc::from("f-2");
        book.push(&a, "a1".into());
        book.push(&b, "b1".into());
        book.push(&a, "a2".into());
        let mut req = LogRequest::new("f", "ns");
        req.tail = Some(2);
        assert_eq!(texts(book.read(&req).collect().await), ["b1", "a2"]);
        req.tail = Some(0);
        assert!(texts(book.read(&req).collect().await).is_empty());
        let mut req = LogRequest::new("f", "ns");
        req.instance = Some("f-1".into());
        assert_eq!(texts(book.read(&req).collect().await), ["a1", "a2"]);
        req.instance = None;
        req.since = Some(Utc::now() + chrono::Duration::seconds(60));
        assert!(texts(book.read(&req).collect().await).is_empty());

        let mut req = LogRequest::new("f", "ns");
        req.follow = true;
        req.tail = Some(1);
        let mut follow = book.read(&req);
        assert_eq!(follow.next().await.unwrap().unwrap().text, "a2");
        book.push(&b, "b2".into());
        assert_eq!(follow.next().await.unwrap().unwrap().text, "b2");
        book.close();
        assert!(follow.next().await.is_none());
        book.push(&a, "dropped".into());
        assert_eq!(
            texts(book.read(&LogRequest::new("f", "ns")).collect().await).len(),
            4
        );
    }
}
