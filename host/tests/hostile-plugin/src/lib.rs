//! Misbehaves in the way its config asks, so the host's sandbox can be tested against it.

use pushrail_plugin_sdk::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Config {
    behaviour: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    port: u16,
}

struct Hostile {
    config: Config,
    /// Set at open, so a test can tell one session from another.
    session_id: u64,
    calls: u64,
}

impl Destination for Hostile {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new("hostile", "Hostile", "Misbehaves on purpose").config_schema(
            serde_json::json!({
                "type": "object",
                "required": ["behaviour"],
                "properties": {
                    "behaviour": { "type": "string" },
                    "url": { "type": "string" },
                    "port": { "type": "integer" }
                }
            }),
        )
    }

    fn open(config: Config, _credential: Option<Credential>) -> Result<Self, Failure> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| Failure::permanent(e.to_string()))?;
        Ok(Self {
            config,
            session_id: u64::from_le_bytes(bytes),
            calls: 0,
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        self.calls += 1;
        match self.config.behaviour.as_str() {
            // Which session answered, and how many batches it has seen.
            "session" => all(
                events,
                Ok(Delivered {
                    status_code: None,
                    response_excerpt: Some(format!(
                        "session {:016x} call {}",
                        self.session_id, self.calls
                    )),
                }),
            ),
            // Like `session`, but its second batch panics: the host must not reuse it after.
            "session-panic" if self.calls == 2 => panic!("hostile session panicked on purpose"),
            "session-panic" => all(
                events,
                Ok(Delivered {
                    status_code: None,
                    response_excerpt: Some(format!(
                        "session {:016x} call {}",
                        self.session_id, self.calls
                    )),
                }),
            ),
            // Refuses the events whose payload says `"refuse": true`, delivers the rest.
            "partial" => events
                .iter()
                .map(|event| {
                    let payload: serde_json::Value =
                        serde_json::from_slice(&event.payload).unwrap_or_default();
                    if payload["refuse"] == true {
                        Err(Failure::permanent(format!("refused {}", event.id)))
                    } else {
                        Ok(Delivered::default())
                    }
                })
                .collect(),
            // A plugin bug: answers for the first event only.
            "omit" => vec![Ok(Delivered::default())],
            _ => all(events, behave(&self.config)),
        }
    }
}

fn behave(config: &Config) -> DeliveryResult {
    {
        match config.behaviour.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                // 4 GiB in 64 MiB pieces (wasm32's usize cannot say 4 GiB in one); black_box keeps
                // the optimiser from eliding memory nobody reads.
                let mut pieces: Vec<Vec<u8>> = Vec::new();
                for _ in 0..64 {
                    pieces.push(std::hint::black_box(vec![1; 64 << 20]));
                }
                let total: usize = pieces.iter().map(Vec::len).sum();
                Ok(Delivered {
                    status_code: None,
                    response_excerpt: Some(total.to_string()),
                })
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "resources" => {
                let mut held = Vec::new();
                for _ in 0..1_000_000 {
                    held.push(pushrail_plugin_sdk::bindings::wasi::http::types::Fields::new());
                }
                Ok(Delivered {
                    status_code: None,
                    response_excerpt: Some(held.len().to_string()),
                })
            }
            "file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => Ok(Delivered {
                    status_code: None,
                    response_excerpt: Some(text),
                }),
                Err(e) => Err(Failure::permanent(format!("file access refused: {e}"))),
            },
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                if vars.is_empty() {
                    Err(Failure::permanent("no environment visible"))
                } else {
                    Ok(Delivered {
                        status_code: None,
                        response_excerpt: Some(vars.join(",")),
                    })
                }
            }
            "tcp" => match net::TcpStream::connect("127.0.0.1", config.port, false) {
                Ok(_) => Ok(Delivered::default()),
                Err(e) => Err(e.into()),
            },
            "socket" => match std::net::TcpStream::connect(("127.0.0.1", config.port)) {
                Ok(_) => Ok(Delivered::default()),
                Err(e) => Err(Failure::permanent(format!("raw socket refused: {e}"))),
            },
            "http" => http::Request::get(&config.url)?.send()?.into_result(),
            // Bypasses the SDK's URL normalisation: the authority goes to the host as written.
            "raw-authority" => raw_get(&config.url),
            "follow-redirect" => {
                let first = http::Request::get(&config.url)?.send()?;
                let location = first
                    .header("location")
                    .ok_or_else(|| Failure::permanent("no redirect"))?
                    .to_owned();
                http::Request::get(&location)?.send()?.into_result()
            }
            other => Err(Failure::permanent(format!("unknown behaviour {other}"))),
        }
    }
}

fn raw_get(authority: &str) -> DeliveryResult {
    use pushrail_plugin_sdk::bindings::wasi::http::{outgoing_handler, types};
    let request = types::OutgoingRequest::new(types::Fields::new());
    request
        .set_scheme(Some(&types::Scheme::Http))
        .map_err(|()| Failure::permanent("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| Failure::permanent("authority refused"))?;
    request
        .set_path_with_query(Some("/"))
        .map_err(|()| Failure::permanent("path"))?;
    let body = request.body().map_err(|()| Failure::permanent("body"))?;
    let pending = outgoing_handler::handle(request, None)
        .map_err(|e| Failure::permanent(format!("{e:?}")))?;
    types::OutgoingBody::finish(body, None).map_err(|e| Failure::permanent(format!("{e:?}")))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(Delivered {
            status_code: Some(response.status()),
            response_excerpt: None,
        }),
        Some(Ok(Err(code))) => Err(Failure::permanent(format!("refused: {code:?}"))),
        _ => Err(Failure::retryable("no response")),
    }
}

export_destination!(Hostile);
