//! A real HTTP server that replays recorded provider and feed responses:
//! each route is a path (and optionally one query parameter's value) with
//! the status, content type, headers and body the provider really sends.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[derive(Clone)]
pub struct Recorded {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self { status, content_type, headers: Vec::new(), body: body.into() }
    }

    /// A file from `tests/fixtures`, copied from the providers' real answers.
    pub fn fixture(status: u16, content_type: &'static str, name: &str) -> Self {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        Self::new(status, content_type, std::fs::read(path).expect("fixture exists"))
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

struct Route {
    path: String,
    param: Option<(String, String)>,
    answer: Recorded,
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    routes: Mutex<Vec<Route>>,
    seen: Mutex<Vec<SeenRequest>>,
}

pub struct ReplayServer {
    pub base_url: String,
    state: Arc<State>,
}

impl ReplayServer {
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        let shared = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(answer)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        Self { base_url: format!("http://127.0.0.1:{port}"), state }
    }

    /// Answers `path` with `answer` (replacing an earlier answer for the same route).
    pub fn route(&self, path: &str, answer: Recorded) {
        self.add(path, None, answer);
    }

    /// Answers `path` when the query parameter `name` is `value`.
    pub fn route_with_param(&self, path: &str, name: &str, value: &str, answer: Recorded) {
        self.add(path, Some((name.to_string(), value.to_string())), answer);
    }

    fn add(&self, path: &str, param: Option<(String, String)>, answer: Recorded) {
        let mut routes = self.state.routes.lock().unwrap();
        routes.retain(|r| !(r.path == path && r.param == param));
        routes.push(Route { path: path.to_string(), param, answer });
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn requests_to(&self, path: &str) -> Vec<SeenRequest> {
        self.state.seen.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }
}

async fn answer(request: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.query_string().as_bytes()).into_owned().collect();
    state.seen.lock().unwrap().push(SeenRequest {
        path: request.path().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
    });
    let routes = state.routes.lock().unwrap();
    let matching = routes
        .iter()
        .filter(|r| r.path == request.path())
        .filter(|r| r.param.as_ref().is_none_or(|(k, v)| query.iter().any(|(qk, qv)| qk == k && qv == v)))
        .max_by_key(|r| r.param.is_some());
    let Some(route) = matching else {
        return HttpResponse::NotFound().body("no such route in the replay server");
    };
    let recorded = &route.answer;
    if let Some(etag) = recorded.headers.iter().find(|(n, _)| *n == "ETag").map(|(_, v)| v)
        && request.headers().get("If-None-Match").is_some_and(|v| v.to_str().ok() == Some(etag.as_str()))
    {
        return HttpResponse::NotModified().finish();
    }
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(recorded.status).unwrap());
    response.content_type(recorded.content_type);
    for (name, value) in &recorded.headers {
        response.insert_header((*name, value.as_str()));
    }
    response.body(recorded.body.clone())
}
