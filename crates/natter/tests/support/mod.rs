//! Running the `natter` binary in tests and talking HTTP to it.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A child process killed and reaped when dropped: a test that fails before it stops
/// what it started still stops it (a server left running would outlive the test run,
/// holding its output open).
pub struct Reaped(pub Child);

impl std::ops::Deref for Reaped {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `natter` process.
pub struct Running {
    pub child: Reaped,
    pub url: String,
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

pub fn start(data_dir: &std::path::Path) -> Running {
    start_with(data_dir, &[])
}

/// Standalone mode with extra environment variables.
pub fn start_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .env("NATTER_HTTP_ADDR", "127.0.0.1:0")
        .env("NATTER_DATA_DIR", data_dir)
        .env("NATTER_AUTH_ARGON2_MEMORY_KIB", "256")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start natter");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line of output").unwrap();
    let url = first
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    Running {
        child: Reaped(child),
        url,
        _stdout: lines,
    }
}

/// A loopback address nobody listens on, for a server started with a fixed address.
///
/// Taken below the kernel's ephemeral range (32768 and up here), where `bind(:0)` and
/// outgoing connections take theirs: an ephemeral port that was free when asked can be
/// handed out again (to a proxy, a collector, another test's service) before the server
/// binds it, and that server then never becomes ready. Each test process counts through
/// its own stretch of ports (from its pid), skipping any already taken.
pub fn free_addr() -> String {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const STRETCH: u16 = 180;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = FIRST + (std::process::id() % 70) as u16 * STRETCH;
    (0..STRETCH)
        .map(|_| base + NEXT.fetch_add(1, Ordering::Relaxed) % STRETCH)
        .find_map(|port| std::net::TcpListener::bind(("127.0.0.1", port)).ok())
        .map(|listener| listener.local_addr().unwrap().to_string())
        .unwrap_or_else(|| panic!("every port from {base} on is taken"))
}

/// GET `path`; the raw response.
pub fn get(url: &str, path: &str) -> String {
    request(url, "GET", path, None, None)
}

/// One HTTP/1.1 request with an optional bearer token and JSON body; the raw response.
pub fn request(
    url: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<&str>,
) -> String {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = json.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Registers `name` (password "correct horse") through the JSON API; fails the test
/// unless it is created.
pub fn register(url: &str, name: &str) {
    let credentials = format!(r#"{{"username":"{name}","password":"correct horse"}}"#);
    let registered = request(
        url,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(&credentials),
    );
    assert!(registered.starts_with("HTTP/1.1 201"), "{registered}");
}

/// SIGTERM, then the exit status.
pub fn terminate(mut running: Running) -> std::process::ExitStatus {
    let pid = running.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    running.child.wait().unwrap()
}

/// One HTTP exchange with cookies and an optional form body; the raw response.
pub fn call(
    url: &str,
    method: &str,
    path: &str,
    cookies: &str,
    form: Option<&str>,
    extra: &str,
) -> String {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let body = form.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nCookie: {cookies}\r\n{extra}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The value `name=` is set to by the response, if it sets it.
pub fn set_cookie(response: &str, name: &str) -> Option<String> {
    response
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .find_map(|c| {
            c.strip_prefix(&format!("{name}="))?
                .split(';')
                .next()
                .map(str::to_owned)
        })
}

pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
}

pub fn hidden(page: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {field} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}
