//! Rendering pages built by scripts in headless Chromium, against a loopback lab fleet.
//! Lab sites are served on 127.0.0.2 (allowed with `allow_nets`); 127.0.0.9 stays refused by
//! the address guard, and a listener there proves that no rendered page reached it.
//!
//! These tests need Debian's `chromium` (CI installs it). The browser tests share one scanner,
//! so one Chromium starts for the whole group.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beian::crawl::render::find_chromium;
use beian::crawl::{scan_stream, RenderMode, Renderer, Resolver, ScanConfig, Scanner};
use beian::extract::Via;
use beian::fleet::{Fleet, LabResponse, LabSite};
use beian::observation::{Observation, RenderStatus};
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const LAB_IP: &str = "127.0.0.2";
/// Refused by the guard (only 127.0.0.2/32 is allowed).
const REFUSED_IP: &str = "127.0.0.9";

fn require_chromium() {
    if let Err(e) = find_chromium(None) {
        panic!(
            "the rendering tests need Chromium ({e}); install it with \
             `apt-get install -y --no-install-recommends chromium fonts-noto-cjk`"
        );
    }
}

fn lab_config(hosts: &[&str]) -> ScanConfig {
    ScanConfig {
        deadline_ms: 20_000,
        render: RenderMode::Auto,
        render_timeout_ms: 6_000,
        ..super::lab::lab_config(LAB_IP, hosts)
    }
}

/// A TCP listener that counts connections and never answers.
struct Listener {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// The first bytes received on each connection.
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listener(ip: &str) -> Listener {
    let l = TcpListener::bind((ip.parse::<std::net::IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (count, log) = (accepted.clone(), seen.clone());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let log = log.clone();
            // Read what arrives, never answer, never close.
            held.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await
                {
                    log.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
                std::future::pending::<()>().await;
                drop(stream);
            }));
        }
    });
    Listener {
        addr,
        accepted,
        seen,
        task,
    }
}

fn page(body: &str) -> LabResponse {
    LabResponse::html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>lab</title></head><body>\
         <header><h1>欢迎</h1></header><main><p>内容</p></main>{body}</body></html>"
    ))
}

/// A footer written by `document.write`.
const DOC_WRITE: &str = "<script>document.write('<footer>京ICP备12345678号-1</footer>')</script>";

async fn scan_all(scanner: Arc<Scanner>, targets: Vec<String>) -> HashMap<String, Observation> {
    let stream = scan_stream(scanner, futures::stream::iter(targets), 8);
    tokio::time::timeout(Duration::from_secs(60), stream.collect::<Vec<_>>())
        .await
        .expect("the scan must finish")
        .into_iter()
        .map(|o| (o.host.clone(), o))
        .collect()
}

fn icp(obs: &Observation) -> Vec<(String, Via)> {
    obs.page
        .as_ref()
        .map(|p| {
            p.icp
                .iter()
                .map(|m| (m.number.to_string(), m.via))
                .collect()
        })
        .unwrap_or_default()
}

/// All browser scenarios against one scanner (one Chromium).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_scenarios_with_one_browser() {
    require_chromium();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let canary = listener(REFUSED_IP).await;
    // A STUN server for WebRTC: UDP, which Fetch interception does not see.
    let stun = tokio::net::UdpSocket::bind((REFUSED_IP, 0)).await.unwrap();
    let stun_port = stun.local_addr().unwrap().port();
    let datagrams = Arc::new(AtomicUsize::new(0));
    let stun_task = {
        let datagrams = datagrams.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while stun.recv_from(&mut buf).await.is_ok() {
                datagrams.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let hang = listener(LAB_IP).await;
    let c = canary.addr.port();
    let refused = format!("http://{REFUSED_IP}:{c}");

    let mount = r#"<div id="app"></div>
        <template id="footer-tpl"><footer class="site-footer"><a href="https://beian.miit.gov.cn/">{{ icp }}</a></footer></template>
        <script>
          fetch('/api/site.json').then(r => r.json()).then(site => {
            const t = document.getElementById('footer-tpl').content.cloneNode(true);
            t.querySelector('a').textContent = site.icp;
            document.getElementById('app').appendChild(t);
          });
        </script>"#;
    let ssrf = format!(
        r#"<link rel="prefetch" href="{refused}/prefetch">
        <link rel="preconnect" href="{refused}">
        <link rel="dns-prefetch" href="//internal.lab">
        <iframe src="{refused}/iframe"></iframe>
        <img src="/redirect.png">
        <script>
          fetch('{refused}/fetch').catch(() => {{}});
          fetch('http://internal.lab:{c}/by-name').catch(() => {{}});
          new Image().src = 'http://169.254.169.254/latest/meta-data/';
          try {{ new WebSocket('ws://{REFUSED_IP}:{c}/ws'); }} catch (e) {{}}
          try {{ new EventSource('{refused}/events'); }} catch (e) {{}}
          try {{
            const code = "fetch('{refused}/worker').catch(() => {{}})";
            new Worker(URL.createObjectURL(new Blob([code], {{ type: 'text/javascript' }})));
          }} catch (e) {{}}
          navigator.sendBeacon && navigator.sendBeacon('{refused}/beacon', 'x');
          try {{
            const pc = new RTCPeerConnection({{ iceServers: [{{ urls: 'stun:{REFUSED_IP}:{stun_port}' }}] }});
            pc.createDataChannel('x');
            pc.createOffer().then(o => pc.setLocalDescription(o));
          }} catch (e) {{}}
          try {{ navigator.serviceWorker.register('/sw.js'); }} catch (e) {{}}
        </script>
        {DOC_WRITE}"#
    );
    let many = format!(
        "<script>for (let i = 0; i < 500; i++) fetch('/r' + i).catch(() => {{}});</script>{DOC_WRITE}"
    );
    let hanging = format!(
        r#"<img src="http://{LAB_IP}:{}/never.png">{DOC_WRITE}"#,
        hang.addr.port()
    );
    let sites = vec![
        LabSite::new("docwrite.lab").route("/", page(DOC_WRITE)),
        LabSite::new("mount.lab").route("/", page(mount)).route(
            "/api/site.json",
            LabResponse {
                status: 200,
                content_type: "application/json".into(),
                headers: Vec::new(),
                body: r#"{"icp":"沪ICP备09007032号"}"#.into(),
            },
        ),
        LabSite::new("ssrf.lab")
            .route("/", page(&ssrf))
            .route("/redirect.png", LabResponse::redirect(302, &format!("{refused}/redirected"))),
        LabSite::new("meta.lab").route(
            "/",
            page(&format!(
                "<script>new Image().src = 'http://169.254.169.254/latest/meta-data/';</script>{DOC_WRITE}"
            )),
        ),
        LabSite::new("many.lab").route("/", page(&many)),
        LabSite::new("hang.lab").route("/", page(&hanging)),
        LabSite::new("static.lab").route("/", page("<footer>京ICP备12345678号</footer>")),
        // GBK, declared in a <meta>.
        LabSite::new("gbk.lab").route(
            "/",
            LabResponse {
                status: 200,
                content_type: "text/html".into(),
                headers: Vec::new(),
                body: encoding_rs::GBK
                    .encode(&format!(
                        "<html><head><meta charset=gbk></head><body><p>欢迎</p>{DOC_WRITE}</body></html>"
                    ))
                    .0
                    .into_owned(),
            },
        ),
        // No charset anywhere: decoded as UTF-8, as the static extractor does.
        LabSite::new("nocharset.lab").route(
            "/",
            LabResponse {
                status: 200,
                content_type: "text/html".into(),
                headers: Vec::new(),
                body: format!("<html><body><p>欢迎</p>{DOC_WRITE}</body></html>").into_bytes(),
            },
        ),
    ];
    let fleet = Fleet::start(format!("{LAB_IP}:0").parse().unwrap(), sites)
        .await
        .unwrap();
    let hosts: Vec<String> = fleet.hosts.clone();
    let mut config = lab_config(&hosts.iter().map(String::as_str).collect::<Vec<_>>());
    // A name that resolves to the refused address (ssrf.lab fetches it by name).
    config
        .overrides
        .insert("internal.lab".into(), vec![REFUSED_IP.parse().unwrap()]);
    let scanner = Arc::new(Scanner::new(config).unwrap());
    let port = fleet.addr.port();
    let targets: Vec<String> = hosts
        .iter()
        .map(|h| format!("http://{h}:{port}/"))
        .collect();
    let started = Instant::now();
    let found = scan_all(scanner, targets).await;
    let took = started.elapsed();

    // document.write
    let obs = &found["docwrite.lab"];
    let render = obs.render.as_ref().expect("docwrite.lab was rendered");
    assert_eq!(render.status, RenderStatus::Rendered, "{render:?}");
    assert_eq!(
        icp(obs),
        vec![("京ICP备12345678号-1".to_string(), Via::Rendered)],
        "{obs:#?}"
    );
    let mention = &obs.page.as_ref().unwrap().icp[0];
    assert!(mention.in_footer);
    assert!(render.requests >= 1, "{render:?}");
    assert_eq!(render.blocked, 0, "{render:?}");

    // A framework-style mount from a template and same-origin JSON.
    let obs = &found["mount.lab"];
    let render = obs.render.as_ref().unwrap();
    assert_eq!(render.status, RenderStatus::Rendered, "{render:?}");
    assert_eq!(
        icp(obs),
        vec![("沪ICP备09007032号".to_string(), Via::Rendered)],
        "{obs:#?}"
    );
    let mention = &obs.page.as_ref().unwrap().icp[0];
    assert!(mention.linked && mention.in_footer, "{mention:?}");
    assert_eq!(mention.link_host.as_deref(), Some("beian.miit.gov.cn"));
    assert!(
        render.requests >= 2,
        "the document and the JSON: {render:?}"
    );

    // SSRF: nothing reached the refused address; the attempts were counted.
    let obs = &found["ssrf.lab"];
    let render = obs.render.as_ref().unwrap();
    assert_eq!(render.status, RenderStatus::Rendered, "{render:?}");
    assert_eq!(icp(obs).len(), 1, "{obs:#?}");
    assert!(render.blocked >= 4, "{render:?}");
    assert_eq!(
        canary.accepted.load(Ordering::SeqCst),
        0,
        "a rendered page reached the refused address: {:?}",
        canary.seen.lock().unwrap()
    );
    assert_eq!(datagrams.load(Ordering::SeqCst), 0, "WebRTC sent UDP");
    stun_task.abort();

    // The cloud metadata address is refused.
    let obs = &found["meta.lab"];
    let render = obs.render.as_ref().unwrap();
    assert_eq!(render.status, RenderStatus::Rendered, "{render:?}");
    assert_eq!(render.blocked, 1, "{render:?}");
    assert!(render.requests >= 1, "{render:?}");

    // 500 requests are capped at the configured 50.
    let obs = &found["many.lab"];
    let render = obs.render.as_ref().unwrap();
    assert_eq!(render.status, RenderStatus::Rendered, "{render:?}");
    assert_eq!(render.requests, 50, "{render:?}");
    assert!(render.blocked > 0, "{render:?}");

    // A page that never finishes loading hits the render deadline; the static extraction stays.
    let obs = &found["hang.lab"];
    let render = obs.render.as_ref().unwrap();
    assert_eq!(render.status, RenderStatus::Timeout, "{render:?}");
    assert!(icp(obs).is_empty(), "{obs:#?}");
    assert!(obs.page.as_ref().unwrap().needs_render());
    assert!(obs.cert.is_some(), "the certificate was still fetched");

    let obs = &found["gbk.lab"];
    assert_eq!(obs.charset.as_deref(), Some("gbk"));
    assert_eq!(
        icp(obs),
        vec![("京ICP备12345678号-1".to_string(), Via::Rendered)],
        "{obs:#?}"
    );
    let obs = &found["nocharset.lab"];
    assert_eq!(
        icp(obs),
        vec![("京ICP备12345678号-1".to_string(), Via::Rendered)],
        "{obs:#?}"
    );

    // A static footer needs no rendering.
    let obs = &found["static.lab"];
    assert!(obs.render.is_none(), "{obs:#?}");
    assert_eq!(icp(obs)[0].1, Via::Text);
    eprintln!("render scenarios: {took:?}");
}

#[tokio::test]
async fn render_off_records_off() {
    let fleet = Fleet::start(
        format!("{LAB_IP}:0").parse().unwrap(),
        vec![LabSite::new("off.lab").route("/", page(DOC_WRITE))],
    )
    .await
    .unwrap();
    let mut config = lab_config(&["off.lab"]);
    config.render = RenderMode::Off;
    let scanner = Arc::new(Scanner::new(config).unwrap());
    let found = scan_all(
        scanner,
        vec![format!("http://off.lab:{}/", fleet.addr.port())],
    )
    .await;
    let obs = &found["off.lab"];
    let render = obs.render.as_ref().expect("the page needed rendering");
    assert_eq!(render.status, RenderStatus::Off);
    assert_eq!((render.requests, render.blocked), (0, 0));
    assert!(icp(obs).is_empty());
    assert!(obs.page.as_ref().unwrap().needs_render());
}

/// Log output captured for one thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[test]
fn missing_chromium_is_reported_once_and_recorded_unavailable() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread: the scan's tasks log through this thread's subscriber.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let hosts = ["a.lab", "b.lab", "c.lab"];
        let sites = hosts
            .iter()
            .map(|h| LabSite::new(h).route("/", page(DOC_WRITE)))
            .collect();
        let fleet = Fleet::start(format!("{LAB_IP}:0").parse().unwrap(), sites)
            .await
            .unwrap();
        let mut config = lab_config(&hosts);
        config.chromium = Some("/nonexistent/chromium".into());
        let scanner = Arc::new(Scanner::new(config).unwrap());
        let port = fleet.addr.port();
        let targets = hosts
            .iter()
            .map(|h| format!("http://{h}:{port}/"))
            .collect();
        let found = scan_all(scanner, targets).await;
        assert_eq!(found.len(), 3);
        for obs in found.values() {
            let render = obs.render.as_ref().expect("the page needed rendering");
            assert_eq!(render.status, RenderStatus::Unavailable, "{render:?}");
            assert!(
                render
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("/nonexistent/chromium")),
                "{render:?}"
            );
            assert!(icp(obs).is_empty());
            assert!(obs.cert.is_some());
        }
    });
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("rendering is unavailable").count(),
        1,
        "the warning is logged once: {text}"
    );
    assert!(text.contains("/nonexistent/chromium"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_browser_is_started_again() {
    require_chromium();
    // Its first render has a deadline: not beside the page tests' browsers on 2 cores.
    let _turn = crate::web::ONE_BROWSER_AT_A_TIME.lock().await;
    let fleet = Fleet::start(
        format!("{LAB_IP}:0").parse().unwrap(),
        vec![LabSite::new("crash.lab").route("/", page(DOC_WRITE))],
    )
    .await
    .unwrap();
    let config = lab_config(&["crash.lab"]);
    let renderer = Renderer::launch(&config, Arc::new(Resolver::new(&config)))
        .await
        .unwrap();
    let url = url::Url::parse(&format!("http://crash.lab:{}/", fleet.addr.port())).unwrap();
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(15);

    let (html, record) = renderer.render(&url, deadline()).await;
    assert_eq!(record.status, RenderStatus::Rendered, "{record:?}");
    assert!(html.unwrap().contains("京ICP备12345678号-1"));

    let pid = renderer.browser_pid().await.expect("Chromium runs");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The render right after the crash may fail; the scanner is not wedged and the next one
    // gets a new browser.
    let (_, first) = renderer.render(&url, deadline()).await;
    assert_ne!(first.status, RenderStatus::Timeout, "{first:?}");
    let (html, record) = renderer.render(&url, deadline()).await;
    assert_eq!(record.status, RenderStatus::Rendered, "{record:?}");
    assert!(html.unwrap().contains("京ICP备12345678号-1"));
    assert_ne!(renderer.browser_pid().await, Some(pid));
}
