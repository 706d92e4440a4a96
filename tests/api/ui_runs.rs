//! The runs page and the leaderboard of the web UI, against runs made through the v2 API:
//! newest-first keyset paging visits every run once, filters and metric columns, sorting,
//! the leaderboard's cells, exports equal to the page, and bad query values as 400 pages.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::helpers::*;

/// A client that does not follow redirects, with a signed-in session cookie.
struct Ui {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (k, rest) = v.split_once('=')?;
        (k == name).then(|| rest.split(';').next().unwrap_or("").to_string())
    })
}

impl Ui {
    async fn sign_in(s: &Server) -> Ui {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let page = client.get(format!("{}/", s.base)).send().await.unwrap();
        let csrf = set_cookie(&page, "weft_signin").expect("sign-in cookie");
        let r = client
            .post(format!("{}/ui/sign-in", s.base))
            .header("cookie", format!("weft_signin={csrf}"))
            .form(&[("api_key", s.key.as_str()), ("next", "/"), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        let session = set_cookie(&r, "weft_session").expect("session cookie");
        Ui { client, base: s.base.clone(), cookie: format!("weft_session={session}") }
    }

    /// GET of a path (with its query): status and body.
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    async fn jsonl(&self, path: &str) -> Vec<Value> {
        self.page(path).await.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// The run ids a runs page shows, in order.
fn run_ids(html: &str) -> Vec<String> {
    html.split("name=\"run\" value=\"").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
}

/// The target of the page's link with `rel`, unescaped.
fn rel_link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\" href=\""))?;
    let rest = &html[at + rel.len() + 13..];
    Some(rest.split('"').next()?.replace("&amp;", "&"))
}

async fn finish(s: &Server, id: &str, summary: Value) {
    json_ok(s.post(&format!("/evaluation_runs/{id}/finish"), &json!({ "summary": summary }))).await;
}

const EVALS: [&str; 2] =
    ["weave:///acme/proj/object/Qa:0123456789abcdef", "weave:///acme/proj/object/Math:fedcba9876543210"];
const MODELS: [&str; 3] = [
    "weave:///acme/proj/object/Gpt:1111111111111111",
    "weave:///acme/proj/object/Llama:2222222222222222",
    "weave:///acme/proj/object/Llama:3333333333333333",
];

/// Creates `n` runs over the evaluations and models; most finish with a summary. Returns the
/// v2 list (oldest first).
async fn fill(s: &Server, n: usize) -> Vec<Value> {
    for i in 0..n {
        let (e, m) = (EVALS[i % 2], MODELS[i % 3]);
        let id = s.create_run(e, m).await;
        if i % 7 != 6 {
            let summary = json!({
                "acc": {"mean": (i % 5) as f64 / 4.0},
                "latency": {"mean": 1.0 + (i % 4) as f64},
                "ok": i % 2 == 0,
                "status_counts": {"success": 3},
            });
            finish(s, &id, summary).await;
        }
    }
    jsonl(s.get("/evaluation_runs")).await
}

#[tokio::test]
async fn newest_first_pages_visit_every_run_once_both_ways() {
    let s = Server::start();
    let all = fill(&s, 23).await;
    let ui = Ui::sign_in(&s).await;
    let newest: Vec<String> =
        all.iter().rev().map(|r| r["evaluation_run_id"].as_str().unwrap().to_string()).collect();

    let mut pages = Vec::new();
    let mut path = "/acme/proj/weave?limit=5".to_string();
    loop {
        let html = ui.page(&path).await;
        assert!(!html.contains("offset="), "keyset links carry no offset: {path}");
        pages.push(run_ids(&html));
        match rel_link(&html, "next") {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(pages.len(), 5);
    let seen: Vec<String> = pages.concat();
    assert_eq!(seen, newest, "every run once, newest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());

    // Back again from the last page through "← Newer": the same pages, in reverse.
    let mut back = vec![pages.last().unwrap().clone()];
    let mut html = ui.page(&path).await;
    while let Some(prev) = rel_link(&html, "prev") {
        html = ui.page(&prev).await;
        back.push(run_ids(&html));
    }
    back.reverse();
    assert_eq!(back, pages);
    assert!(rel_link(&html, "prev").is_none() && rel_link(&html, "first").is_none());

    // Oldest first pages the same way.
    let mut seen = Vec::new();
    let mut path = "/acme/proj/weave/runs?sort=started&dir=asc&limit=7".to_string();
    loop {
        let html = ui.page(&path).await;
        seen.extend(run_ids(&html));
        match rel_link(&html, "next") {
            Some(next) => path = next,
            None => break,
        }
    }
    let oldest: Vec<String> = newest.iter().rev().cloned().collect();
    assert_eq!(seen, oldest);

    // Runs added while paging are not repeated, and none is skipped.
    let first = ui.page("/acme/proj/weave?limit=5").await;
    let next = rel_link(&first, "next").unwrap();
    s.create_run(EVALS[0], MODELS[0]).await;
    assert_eq!(run_ids(&ui.page(&next).await), pages[1]);
}

#[tokio::test]
async fn filters_select_and_page_through_the_store() {
    let s = Server::start();
    let all = fill(&s, 24).await;
    let ui = Ui::sign_in(&s).await;
    let html = ui.page("/acme/proj/weave").await;
    // The selects list every evaluation and model by name and short digest, valued by ref.
    for r in EVALS.iter().chain(&MODELS) {
        assert!(html.contains(&format!("<option value=\"{r}\">")), "{r} offered");
    }
    assert!(html.contains(">Qa:01234567</option>") && html.contains(">Llama:22222222</option>"));

    let by = |key: &str, value: &str| -> Vec<String> {
        all.iter()
            .rev()
            .filter(|r| r[key] == value)
            .map(|r| r["evaluation_run_id"].as_str().unwrap().to_string())
            .collect()
    };
    for (key, value) in [("model", MODELS[1]), ("evaluation", EVALS[0])] {
        let mut seen = Vec::new();
        let mut path = format!("/acme/proj/weave/runs?{key}={}&limit=3", urlencode(value));
        loop {
            let html = ui.page(&path).await;
            assert!(html.contains(&format!("<option value=\"{value}\" selected>")));
            seen.extend(run_ids(&html));
            match rel_link(&html, "next") {
                Some(next) => path = next,
                None => break,
            }
        }
        assert_eq!(seen, by(key, value), "{key} filter");
    }
    // Both filters, and the status filter and search on top, paged.
    let both = ui
        .jsonl(&format!(
            "/acme/proj/weave/runs?model={}&evaluation={}&format=jsonl",
            urlencode(MODELS[0]),
            urlencode(EVALS[0])
        ))
        .await;
    let expected: Vec<&Value> =
        all.iter().rev().filter(|r| r["model"] == MODELS[0] && r["evaluation"] == EVALS[0]).collect();
    assert_eq!(both.len(), expected.len());
    let running: Vec<String> = all
        .iter()
        .rev()
        .filter(|r| r["status"] == "running")
        .map(|r| r["evaluation_run_id"].as_str().unwrap().to_string())
        .collect();
    assert!(running.len() >= 3);
    let mut seen = Vec::new();
    let mut path = "/acme/proj/weave/runs?status=running&limit=2".to_string();
    loop {
        let html = ui.page(&path).await;
        seen.extend(run_ids(&html));
        match rel_link(&html, "next") {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(seen, running);
    let one = &running[1];
    let found = ui.jsonl(&format!("/acme/proj/weave/runs?q={}&format=jsonl", &one[one.len() - 12..])).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["run"], one.as_str());
    let none = ui.page("/acme/proj/weave/runs?q=no-such-run-anywhere").await;
    assert!(none.contains("No evaluation runs match."));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn metric_columns_sort_and_export_the_page_numbers() {
    let s = Server::start();
    let all = fill(&s, 14).await;
    let ui = Ui::sign_in(&s).await;
    let html = ui.page("/acme/proj/weave").await;
    for m in ["m:acc.mean", "m:latency.mean", "m:ok"] {
        assert!(html.contains(&format!("sort={}", urlencode(m))), "{m} is a sortable column");
    }
    assert!(!html.contains("m:status_counts") && !html.contains("m:weave"));

    let summaries: HashMap<String, &Value> =
        all.iter().map(|r| (r["evaluation_run_id"].as_str().unwrap().to_string(), &r["summary"])).collect();
    let rows = ui.jsonl("/acme/proj/weave/runs?sort=m:acc.mean&dir=desc&format=jsonl").await;
    assert_eq!(rows.len(), all.len());
    let mut last = f64::INFINITY;
    let mut missing = false;
    for row in &rows {
        let id = row["run"].as_str().unwrap();
        let want = summaries[id]["acc"]["mean"].as_f64();
        assert_eq!(row["m:acc.mean"].as_f64(), want, "the export holds the run's number");
        match want {
            Some(v) => {
                assert!(!missing, "runs without the metric sort last");
                assert!(v <= last);
                last = v;
            }
            None => missing = true,
        }
        let ok = summaries[id]["ok"].as_bool().map(|b| if b { 1 } else { 0 });
        assert_eq!(row["m:ok"].as_i64(), ok);
    }
    // The CSV export holds the same cells as the page.
    let csv = ui.page("/acme/proj/weave/runs?sort=m:acc.mean&dir=desc&format=csv").await;
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "m:latency.mean").unwrap();
    for (line, row) in csv.lines().skip(1).zip(&rows) {
        let cell = line.split(',').nth(col).unwrap();
        assert_eq!(cell.parse::<f64>().ok(), row["m:latency.mean"].as_f64());
    }
    // Sorted by a metric, pages go by offset and carry no cursor.
    let page = ui.page("/acme/proj/weave/runs?sort=m:latency.mean&dir=asc&limit=5").await;
    let next = rel_link(&page, "next").unwrap();
    assert!(next.contains("offset=5") && !next.contains("after="), "{next}");
    let second = run_ids(&ui.page(&next).await);
    let whole = ui.jsonl("/acme/proj/weave/runs?sort=m:latency.mean&dir=asc&format=jsonl").await;
    let ids: Vec<&str> = whole.iter().map(|r| r["run"].as_str().unwrap()).collect();
    assert_eq!(second, ids[5..10]);
}

/// The leaderboard's cells by (model, evaluation) from its JSONL export.
fn cells(rows: &[Value]) -> HashMap<(String, String), f64> {
    let mut out = HashMap::new();
    for row in rows {
        let model = row["model"].as_str().unwrap().to_string();
        for (k, v) in row.as_object().unwrap() {
            if k != "model"
                && let Some(x) = v.as_f64()
            {
                out.insert((model.clone(), k.clone()), x);
            }
        }
    }
    out
}

#[tokio::test]
async fn the_leaderboard_shows_latest_or_best_runs_per_pair() {
    let s = Server::start();
    // Per pair, three runs: scores 0.2, 0.9, then the latest 0.5; latencies 3, 1, 2.
    let mut latest_ids = HashMap::new();
    for (e, m) in [(EVALS[0], MODELS[0]), (EVALS[0], MODELS[1]), (EVALS[1], MODELS[0])] {
        let bump = if m == MODELS[1] { 0.05 } else { 0.0 };
        for (acc, latency) in [(0.2, 3.0), (0.9, 1.0), (0.5, 2.0)] {
            let id = s.create_run(e, m).await;
            let summary = json!({"acc": {"mean": acc + bump}, "latency": {"mean": latency + bump}});
            finish(&s, &id, summary).await;
            latest_ids.insert((m, e), id);
        }
    }
    // A run naming no model is not on the board.
    s.create_run(EVALS[1], "").await;
    let ui = Ui::sign_in(&s).await;
    let html = ui.page("/acme/proj/weave/leaderboard").await;
    assert!(html.contains("<option value=\"acc.mean\" selected>"), "the first metric is the default");
    for ((m, e), id) in &latest_ids {
        assert!(html.contains(&format!("/runs/{id}\"")), "{m} × {e} links to its latest run");
    }
    let latest = cells(&ui.jsonl("/acme/proj/weave/leaderboard?format=jsonl").await);
    assert_eq!(latest.len(), 3);
    assert_eq!(latest[&(MODELS[0].to_string(), EVALS[0].to_string())], 0.5);
    assert_eq!(latest[&(MODELS[1].to_string(), EVALS[0].to_string())], 0.55);
    // Higher is better for accuracy: the best of the first evaluation's column is Llama's.
    let best_cells: Vec<&str> = html.split("<td class=\"num h9 best\">").skip(1).collect();
    assert_eq!(best_cells.len(), 2, "one best cell per evaluation");
    assert!(html.contains(&format!(
        "<td class=\"num h0\"><a href=\"/acme/proj/weave/runs/{}\"",
        latest_ids[&(MODELS[0], EVALS[0])]
    )));

    let best = cells(&ui.jsonl("/acme/proj/weave/leaderboard?pick=best&format=jsonl").await);
    assert_eq!(best[&(MODELS[0].to_string(), EVALS[0].to_string())], 0.9);
    assert_eq!(best[&(MODELS[1].to_string(), EVALS[0].to_string())], 0.9 + 0.05);

    // Latency: lower is better, guessed from the name; the best run is the fastest.
    let html = ui.page("/acme/proj/weave/leaderboard?metric=latency.mean&pick=best").await;
    assert!(html.contains("lower is better"));
    let lat =
        cells(&ui.jsonl("/acme/proj/weave/leaderboard?metric=latency.mean&pick=best&format=jsonl").await);
    assert_eq!(lat[&(MODELS[0].to_string(), EVALS[0].to_string())], 1.0);
    let marked = html.split("<td class=\"num h9 best\">").nth(1).unwrap();
    assert!(
        marked.contains(">1<"),
        "the lowest latency is marked best: {}",
        &marked[..200.min(marked.len())]
    );
    // Told otherwise, higher is better.
    let html = ui.page("/acme/proj/weave/leaderboard?metric=latency.mean&lower=0").await;
    assert!(html.contains("higher is better"));
    let csv = ui.page("/acme/proj/weave/leaderboard?metric=latency.mean&format=csv").await;
    assert_eq!(csv.lines().count(), 3, "a header and a row per model: {csv}");
    assert!(csv.contains("2.05") && csv.starts_with("model,"));
}

#[tokio::test]
async fn bad_query_values_are_400_pages() {
    let s = Server::start();
    fill(&s, 3).await;
    let ui = Ui::sign_in(&s).await;
    for q in [
        "/acme/proj/weave/runs?status=bogus",
        "/acme/proj/weave/runs?sort=bogus",
        "/acme/proj/weave/runs?dir=sideways",
        "/acme/proj/weave/runs?after=nonsense",
        "/acme/proj/weave/runs?after=12.x&before=13.y",
        "/acme/proj/weave/runs?sort=model&after=12.x",
        "/acme/proj/weave/runs?limit=-1",
        "/acme/proj/weave/runs?offset=abc",
        "/acme/proj/weave/runs?sort=model&offset=100000000",
        "/acme/proj/weave/runs?format=xml",
        "/acme/proj/weave/leaderboard?pick=worst",
        "/acme/proj/weave/leaderboard?lower=maybe",
        "/acme/proj/weave/leaderboard?metric=a..b",
        "/acme/proj/weave/leaderboard?format=pdf",
    ] {
        let (status, body) = ui.get(q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.contains("Bad request"), "{q}");
    }
    // A cursor past every run is an empty page, not an error.
    let html = ui.page("/acme/proj/weave/runs?after=0.z").await;
    assert!(html.contains("No evaluation runs match."));
}
