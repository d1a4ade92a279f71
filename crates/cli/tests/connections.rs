//! Sockets that send nothing, or send it a byte at a time, are closed in bounded time, and a
//! flood of them from one address leaves HTTP and DIMSE reachable for everyone else.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn http_addr(server: &Server) -> SocketAddr {
    server.url.trim_start_matches("http://").parse().unwrap()
}

/// A connection to `to` from the loopback address `from` (any of 127.0.0.0/8 is this host).
fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(IpAddr::from(from), 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// How long until the server closes `stream` (reading and discarding what it sends), at most
/// `within`; None if it is still open then.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

/// Lets this test process hold `files` descriptors.
fn allow_open_files(files: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_cur < files {
            limit.rlim_cur = files.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[test]
fn silent_idle_and_trickling_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("CLOUDFILM_HTTP__HEADER_TIMEOUT_SECS", "2")]);
    let addr = http_addr(&server);

    // Opened, nothing sent.
    let mut silent = TcpStream::connect(addr).unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(10)).expect("a silent connection is closed");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // One request answered, then idle on keep-alive.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut answer = [0u8; 17];
    idle.read_exact(&mut answer).unwrap();
    assert_eq!(&answer[..12], b"HTTP/1.1 200");
    let took = closed_within(&mut idle, Duration::from_secs(10)).expect("an idle connection is closed");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Headers a byte every 300 ms: they would take 20 s.
    let mut trickle = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let header =
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for byte in header {
        if trickle.write_all(&[*byte]).is_err() || closed_within(&mut trickle, Duration::from_millis(300)).is_some() {
            cut = true;
            break;
        }
    }
    assert!(cut, "trickled headers were read to the end");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    server.stop();
}

#[test]
fn a_body_sent_a_byte_at_a_time_gets_408_and_the_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(
        dir.path(),
        &[("CLOUDFILM_HTTP__BODY_GRACE_SECS", "2"), ("CLOUDFILM_HTTP__BODY_MIN_BYTES_PER_SEC", "1000")],
    );
    let mut stow = TcpStream::connect(http_addr(&server)).unwrap();
    let head = format!(
        "POST /dicom-web/studies HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-type: multipart/related; type=\"application/dicom\"; boundary=b\r\ncontent-length: 100000\r\n\r\n"
    );
    stow.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    stow.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    while started.elapsed() < Duration::from_secs(20) {
        if stow.write_all(b"-").is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match stow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    assert!(closed_within(&mut stow, Duration::from_secs(5)).is_some(), "the connection stays open");
    // Nothing was stored and the server answers others.
    assert_eq!(qido(&server, &key, "/studies").len(), 0);
    server.stop();
}

#[test]
fn a_flood_of_idle_sockets_from_one_address_leaves_http_and_dimse_to_everyone_else() {
    allow_open_files(4096);
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    cli_ok(dir.path(), &["org", "ae", "add", "H1", "ECHO_SCU"]);
    // Under the usual default limit of 1 024 open files, which the server cannot raise.
    let server = Server::start_with_open_files(dir.path(), &[], Some(1024));
    let http = http_addr(&server);
    let dimse = SocketAddr::from(([127, 0, 0, 1], server.dimse_port));

    let mut flood = Vec::new();
    for _ in 0..1100 {
        flood.push(connect_from([127, 0, 0, 2], http).expect("the listener accepts or refuses, never stalls"));
    }
    for _ in 0..200 {
        flood.push(connect_from([127, 0, 0, 2], dimse).expect("the DIMSE listener accepts or refuses"));
    }
    // Beyond its share the flooding address is told the server is busy.
    let mut last = flood.swap_remove(1099);
    last.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut busy = String::new();
    let _ = last.read_to_string(&mut busy);
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");

    // Everyone else: HTTP answers, and an association is accepted and echoed.
    assert_eq!(get(&server, &key, "/studies").status(), 200);
    let echo = std::process::Command::new("/usr/bin/echoscu")
        .args(["-aet", "ECHO_SCU", "-aec", "CLOUDFILM", "127.0.0.1"])
        .arg(server.dimse_port.to_string())
        .output()
        .expect("DCMTK's echoscu (tests/setup installs it)");
    assert!(echo.status.success(), "{}", String::from_utf8_lossy(&echo.stderr));
    drop(flood);
    server.stop();
}

#[test]
fn a_client_that_stops_reading_its_response_is_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[("CLOUDFILM_HTTP__WRITE_TIMEOUT_SECS", "2")]);
    let instances = study(41, 120);
    let refs: Vec<&[u8]> = instances.iter().map(Vec::as_slice).collect();
    assert_eq!(stow(&server, &key, &refs).stored(), 120);
    let path = format!("/dicom-web/studies/{}", study_uid(&instances[0]));
    let whole = get(&server, &key, &path["/dicom-web".len()..]).bytes().unwrap().len();
    assert!(whole > 12 << 20, "the study is larger than the socket buffers ({whole} bytes)");

    // A client with a small receive window that reads nothing.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&http_addr(&server).into()).unwrap();
    let mut stalled: TcpStream = socket.into();
    write!(stalled, "GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\naccept: multipart/related; type=\"application/dicom\"\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_secs(6));
    // What the server had sent before it gave up, then the end of the connection.
    let mut received = Vec::new();
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ended = stalled.read_to_end(&mut received);
    let closed = match &ended {
        Ok(_) => true,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    };
    assert!(closed, "the connection is still open: {ended:?}");
    assert!(received.len() < whole, "the whole response arrived although nobody read it");
    // The server goes on serving.
    assert_eq!(get(&server, &key, "/studies").status(), 200);
    server.stop();
}
