//! Extraction benchmark (a plain bench binary; `cargo bench --bench extract`): CPU per page of
//! `extract_document` — decode, strip server code, guard nesting, parse, walk the visible text,
//! find the numbers — on two page sets, against the HTML parse alone (`scraper::Html`, the DOM
//! build the extraction did before its own tree) on the same pages in the same run:
//!
//! - the fleet bench's homepage (`benches/fleet/run.sh`: 20 KB, 300 paragraphs, a footer);
//! - the footer corpus (`../shared/corpus/footers/*.html`, 80 hand-made homepages), if present.
//!
//! Rounds alternate between the two measurements; the figures are medians of per-round CPU
//! time (this thread's), so other load on the machine moves them less.

use std::path::Path;
use std::time::Duration;

/// The allocator `beian` itself runs on (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn thread_cpu() -> Duration {
    // SAFETY: `clock_gettime` writes into the struct we pass.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn fleet_page() -> Vec<u8> {
    let filler: String = (0..300)
        .map(|i| format!("<p>段落 {i}：这是一个用于基准测试的页面内容。</p>\n"))
        .collect();
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>基准</title></head>
<body><header><nav>首页</nav></header><main>{filler}</main>
<footer><p>© 2026 基准测试有限公司 <a href="https://beian.miit.gov.cn/" target="_blank">京ICP备20000001号-1</a></p></footer></body></html>"#
    )
    .into_bytes()
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/footers");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "html"));
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median µs per page over `rounds` of `reps` passes over `pages`: (extract, parse alone).
fn measure(pages: &[Vec<u8>], rounds: usize, reps: usize) -> (f64, f64) {
    let texts: Vec<String> = pages
        .iter()
        .map(|p| {
            let (text, _) = beian::extract::decode::decode(p, None);
            text.into_owned()
        })
        .collect();
    let n = (pages.len() * reps) as f64;
    let (mut ex, mut parse) = (Vec::new(), Vec::new());
    let mut sink = 0usize;
    for _ in 0..rounds {
        let t = thread_cpu();
        for _ in 0..reps {
            for p in pages {
                let d = beian::extract::extract_document(p, Some("text/html"));
                sink += d.extraction.icp.len();
            }
        }
        ex.push((thread_cpu() - t).as_secs_f64() * 1e6 / n);
        let t = thread_cpu();
        for _ in 0..reps {
            for text in &texts {
                let dom = scraper::Html::parse_document(text);
                sink += dom.tree.nodes().count();
            }
        }
        parse.push((thread_cpu() - t).as_secs_f64() * 1e6 / n);
    }
    std::hint::black_box(sink);
    (median(ex), median(parse))
}

fn main() {
    let rounds: usize = std::env::var("BEIAN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let fleet = vec![fleet_page()];
    let (ex, parse) = measure(&fleet, rounds, 200);
    println!(
        "fleet homepage ({} bytes): extract {ex:.1} µs/page, parse alone {parse:.1} µs/page, extract/parse {:.2}",
        fleet[0].len(),
        ex / parse
    );
    let pages = corpus();
    if pages.is_empty() {
        println!("footer corpus: not found (../shared/corpus/footers)");
        return;
    }
    let bytes: usize = pages.iter().map(Vec::len).sum();
    let (ex, parse) = measure(&pages, rounds, 5);
    println!(
        "footer corpus ({} pages, {} KB): extract {ex:.1} µs/page, parse alone {parse:.1} µs/page, extract/parse {:.2}",
        pages.len(),
        bytes / 1024,
        ex / parse
    );
}
