//! A local webhook receiver that records requests and answers from a script.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    script: VecDeque<u16>,
    default_status: u16,
    delay: Duration,
    redirect_to: Option<String>,
    body: Vec<u8>,
    /// Requests whose body holds one of these answer 400.
    refused: Vec<String>,
    /// Requests being answered right now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            default_status: 200,
            ..Inner::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new().fallback(record).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            inner,
        }
    }

    /// The next requests get these statuses, in order; then the default.
    pub fn script(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().script.extend(statuses);
    }

    pub fn set_default(&self, status: u16) {
        self.inner.lock().unwrap().default_status = status;
    }

    /// The body of every answer.
    pub fn set_body(&self, body: &[u8]) {
        self.inner.lock().unwrap().body = body.to_vec();
    }

    /// Answers every request with 302 to `location`.
    pub fn redirect_to(&self, location: &str) {
        self.inner.lock().unwrap().redirect_to = Some(location.to_owned());
    }

    /// Answers 400 to every request whose body holds `marker`, whatever the script.
    pub fn refuse_bodies_with(&self, marker: &str) {
        self.inner.lock().unwrap().refused.push(marker.to_owned());
    }

    /// Takes every request again.
    pub fn clear_refusals(&self) {
        self.inner.lock().unwrap().refused.clear();
    }

    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// The most requests this receiver was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }

    /// Starts counting [`Receiver::max_in_flight`] afresh from the requests in flight now.
    pub fn reset_max_in_flight(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.max_in_flight = inner.in_flight;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (status, delay, redirect, answer) = {
        let mut inner = inner.lock().unwrap();
        inner.requests.push(Recorded {
            path: uri.path().to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: body.to_vec(),
        });
        let refused = inner
            .refused
            .iter()
            .any(|marker| body.windows(marker.len()).any(|w| w == marker.as_bytes()));
        let status = if refused {
            400
        } else {
            inner.script.pop_front().unwrap_or(inner.default_status)
        };
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        (
            status,
            inner.delay,
            inner.redirect_to.clone(),
            inner.body.clone(),
        )
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    inner.lock().unwrap().in_flight -= 1;
    if let Some(location) = redirect {
        return (
            StatusCode::FOUND,
            [(axum::http::header::LOCATION, location)],
        )
            .into_response();
    }
    (StatusCode::from_u16(status).unwrap(), answer).into_response()
}
