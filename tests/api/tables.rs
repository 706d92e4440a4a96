//! Tables beyond create and read: `table/update` (append, pop, insert), `table/create_from_digests`
//! (the SDK's chunked upload of large tables), `table/query`'s `sort_by`, and the digests Weave
//! computes for each.

use crate::helpers::*;

use serde_json::{Value, json};

const P: &str = "acme/proj";

fn rows(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"i": i, "name": format!("row {i}")})).collect()
}

fn digests(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["digest"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn updates_give_the_digest_of_the_table_created_whole() {
    let s = Server::start();
    let all = rows(4);
    let (base, base_rows) = create_table(&s, P, &all[..2]).await;
    let up = json_ok(post_v1(
        &s,
        "/table/update",
        &json!({"project_id": P, "base_digest": base, "updates": [
            {"append": {"row": all[3]}},
            {"insert": {"index": 2, "row": all[2]}},
            {"append": {"row": {"x": 1}}},
            {"pop": {"index": 4}},
        ]}),
    ))
    .await;
    let (whole, whole_rows) = create_table(&s, P, &all).await;
    assert_eq!(up["digest"], whole.as_str(), "the same rows in the same order: the same table");
    let x = create_table(&s, P, &[json!({"x": 1})]).await.1;
    assert_eq!(up["updated_row_digests"], json!([whole_rows[3], whole_rows[2], x[0], x[0]]));
    assert_eq!(&whole_rows[..2], &base_rows[..]);
    let read = table_rows(&s, &json!({"project_id": P, "digest": up["digest"]})).await;
    assert_eq!(digests(&read), whole_rows);
    assert_eq!(read[2]["val"], all[2]);
    // The base table is unchanged.
    let n = json_ok(post_v1(&s, "/table/query_stats", &json!({"project_id": P, "digest": base}))).await;
    assert_eq!(n["count"], 2);
    // Popping every row gives the empty table, whose digest is that of no rows.
    let empty = create_table(&s, P, &[]).await.0;
    let up = json_ok(post_v1(
        &s,
        "/table/update",
        &json!({"project_id": P, "base_digest": base, "updates": [{"pop": {"index": 1}}, {"pop": {"index": 0}}]}),
    ))
    .await;
    assert_eq!(up["digest"], empty.as_str());
    assert_eq!(up["updated_row_digests"], json!([base_rows[1], base_rows[0]]));
}

#[tokio::test]
async fn bad_updates_are_refused_and_write_nothing() {
    let s = Server::start();
    let (base, _) = create_table(&s, P, &rows(2)).await;
    let new_row = json!({"new": true});
    let update = |updates: Value| json!({"project_id": P, "base_digest": base, "updates": updates});
    for (updates, status, says) in [
        (json!([{"append": {"row": new_row}}, {"pop": {"index": 3}}]), 400, "pop index 3"),
        (json!([{"pop": {"index": -1}}]), 400, "pop index -1"),
        (json!([{"append": {"row": new_row}}, {"insert": {"index": 4, "row": {}}}]), 400, "insert index 4"),
        (json!([{"append": {"row": 5}}]), 400, "not an object"),
        (json!([{"replace": {"index": 0}}]), 422, ""),
        (json!([{"pop": {"index": 0, "row": {}}}]), 422, ""),
    ] {
        let (got, body) = status_json(post_v1(&s, "/table/update", &update(updates.clone()))).await;
        assert_eq!(got, status, "{updates}: {body}");
        assert!(body.to_string().contains(says), "{updates}: {body}");
    }
    let (got, body) = status_json(post_v1(
        &s,
        "/table/update",
        &json!({"project_id": P, "base_digest": "nope", "updates": [{"append": {"row": new_row}}]}),
    ))
    .await;
    assert_eq!(got, 404, "{body}");
    // The row of the refused appends was not stored: a table of it cannot be made from digests.
    let d = create_table(&s, "acme/other", std::slice::from_ref(&new_row)).await.1;
    let (got, body) =
        status_json(post_v1(&s, "/table/create_from_digests", &json!({"project_id": P, "row_digests": d})))
            .await;
    assert_eq!(got, 400, "{body}");
}

#[tokio::test]
async fn tables_from_digests_are_made_of_stored_rows_only() {
    let s = Server::start();
    let all = rows(5);
    let (_, a) = create_table(&s, P, &all[..3]).await;
    let (_, b) = create_table(&s, P, &all[3..]).await;
    let (whole, _) = create_table(&s, P, &all).await;
    let chunks: Vec<String> = a.iter().chain(&b).cloned().collect();
    let made = json_ok(post_v1(
        &s,
        "/table/create_from_digests",
        &json!({"project_id": P, "row_digests": chunks, "expected_digest": whole}),
    ))
    .await;
    assert_eq!(made, json!({"digest": whole}));
    // Repeated rows are rows too.
    let twice = [a[0].clone(), a[0].clone()];
    let made =
        json_ok(post_v1(&s, "/table/create_from_digests", &json!({"project_id": P, "row_digests": twice})))
            .await;
    let read = table_rows(&s, &json!({"project_id": P, "digest": made["digest"]})).await;
    assert_eq!(read.len(), 2);
    assert_eq!(read[1]["original_index"], 1);
    // The SDK's probe: no rows.
    let empty = create_table(&s, P, &[]).await.0;
    let made = json_ok(post_v1(
        &s,
        "/table/create_from_digests",
        &json!({"project_id": P, "row_digests": [], "expected_digest": null}),
    ))
    .await;
    assert_eq!(made["digest"], empty.as_str());

    // Rows of another project, or of none, are not this project's: 400 naming them, nothing stored.
    let (_, theirs) = create_table(&s, "acme/other", &[json!({"secret": 1})]).await;
    for named in [vec![a[0].clone(), theirs[0].clone()], vec!["no-such-row".to_string()]] {
        let (got, body) = status_json(post_v1(
            &s,
            "/table/create_from_digests",
            &json!({"project_id": P, "row_digests": named}),
        ))
        .await;
        assert_eq!(got, 400, "{body}");
        assert!(body["reason"].as_str().unwrap().contains(named.last().unwrap().as_str()), "{body}");
        let d = digest_of(&named);
        let (got, _) =
            status_json(post_v1(&s, "/table/query_stats", &json!({"project_id": P, "digest": d}))).await;
        assert_eq!(got, 404, "nothing stored");
    }
    // A wrong expected digest is a 409 (the SDK then retries without one), here and on create.
    let (got, _) = status_json(post_v1(
        &s,
        "/table/create_from_digests",
        &json!({"project_id": P, "row_digests": a, "expected_digest": whole}),
    ))
    .await;
    assert_eq!(got, 409);
    let (got, _) = status_json(post_v1(
        &s,
        "/table/create",
        &json!({"table": {"project_id": P, "rows": all[..3], "expected_digest": whole}}),
    ))
    .await;
    assert_eq!(got, 409);
}

/// Weave's table digest: hex SHA-256 of the row digests, concatenated.
fn digest_of(row_digests: &[String]) -> String {
    weft::domain::digest::sha256_hex(row_digests.concat().as_bytes())
}

#[tokio::test]
async fn rows_sort_by_fields_of_the_row() {
    let s = Server::start();
    let vals = [
        json!({"id": 0, "score": 2.5, "meta": {"tag": "b"}}),
        json!({"id": 1, "score": 10, "meta": {"tag": "a"}}),
        json!({"id": 2, "meta": {"tag": "c"}}),
        json!({"id": 3, "score": null, "meta": {"tag": "a"}}),
        json!({"id": 4, "score": -1, "meta": {}}),
        json!({"id": 5, "score": "x", "meta": {"tag": "b"}}),
    ];
    let (d, _) = create_table(&s, P, &vals).await;
    let ids = |rows: Vec<Value>| rows.iter().map(|r| r["val"]["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let query = |sort: Value, extra: Value| {
        let mut body = json!({"project_id": P, "digest": d, "sort_by": sort});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let sorted = |sort, extra| {
        let body = query(sort, extra);
        let s = &s;
        async move { ids(table_rows(s, &body).await) }
    };
    assert_eq!(
        sorted(json!([{"field": "score", "direction": "asc"}]), json!({})).await,
        vec![4, 0, 1, 5, 2, 3]
    );
    // An empty row_digests filter filters nothing, as on Weave's servers.
    assert_eq!(
        sorted(json!([{"field": "score", "direction": "asc"}]), json!({"filter": {"row_digests": []}})).await,
        vec![4, 0, 1, 5, 2, 3]
    );
    assert_eq!(sorted(json!([]), json!({"filter": {"row_digests": []}})).await, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        sorted(json!([{"field": "score", "direction": "desc"}]), json!({})).await,
        vec![1, 0, 4, 5, 2, 3]
    );
    assert_eq!(
        sorted(
            json!([{"field": "meta.tag", "direction": "asc"}, {"field": "id", "direction": "desc"}]),
            json!({})
        )
        .await,
        vec![3, 1, 5, 0, 2, 4]
    );
    // The window applies after sorting, the row filter before; positions are the table's.
    let page = table_rows(
        &s,
        &query(json!([{"field": "score", "direction": "desc"}]), json!({"limit": 2, "offset": 1})),
    )
    .await;
    assert_eq!(ids(page.clone()), vec![0, 4]);
    assert_eq!(page[1]["original_index"], 4);
    let all = table_rows(&s, &json!({"project_id": P, "digest": d})).await;
    let only = json!({"filter": {"row_digests": [all[1]["digest"], all[4]["digest"]]}});
    assert_eq!(sorted(json!([{"field": "score", "direction": "asc"}]), only).await, vec![4, 1]);
    // No sort, or an empty one: the table's order.
    assert_eq!(sorted(json!([]), json!({})).await, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(sorted(Value::Null, json!({})).await, vec![0, 1, 2, 3, 4, 5]);

    for (sort, status, says) in [
        (json!([{"field": "score", "direction": "up"}]), 400, "sort direction"),
        (json!([{"field": "score", "direction": "ASC"}]), 400, "sort_by"),
        (json!([{"field": "", "direction": "asc"}]), 400, "empty"),
        (json!([{"field": "a..b", "direction": "asc"}]), 400, "a..b"),
        (json!([{"field": "score"}]), 422, "direction"),
        (json!([{"field": "score", "direction": "asc", "nulls": "first"}]), 422, "nulls"),
    ] {
        let (got, body) = status_json(post_v1(&s, "/table/query", &query(sort.clone(), json!({})))).await;
        assert_eq!(got, status, "{sort}: {body}");
        assert!(body.to_string().contains(says), "{sort}: {body}");
    }
}

/// 5,000 rows of 4 KB (20 MB), uploaded in chunks as the SDK does, read back whole and sorted:
/// the server streams them, holding neither the table nor the answer in memory.
#[tokio::test]
async fn a_large_table_is_read_and_sorted_in_bounded_memory() {
    let s = Server::start();
    let filler = "x".repeat(4000);
    let mut row_digests = Vec::new();
    for chunk in 0..5 {
        let rows: Vec<Value> = (0..1000)
            .map(|i| json!({"i": chunk * 1000 + i, "key": (i * 7919) % 1000, "pad": filler}))
            .collect();
        row_digests.extend(create_table(&s, P, &rows).await.1);
    }
    let made = json_ok(post_v1(
        &s,
        "/table/create_from_digests",
        &json!({"project_id": P, "row_digests": row_digests}),
    ))
    .await;
    let d = made["digest"].as_str().unwrap().to_string();
    assert_eq!(d, digest_of(&row_digests));
    let before = s.rss_kib();
    let all = table_rows(&s, &json!({"project_id": P, "digest": d})).await;
    assert_eq!(all.len(), 5000);
    assert_eq!(digests(&all), row_digests);
    drop(all);
    let sorted = table_rows(
        &s,
        &json!({"project_id": P, "digest": d, "sort_by": [{"field": "key", "direction": "desc"}, {"field": "i", "direction": "asc"}]}),
    )
    .await;
    assert_eq!(sorted.len(), 5000);
    let keys: Vec<(i64, i64)> = sorted
        .iter()
        .map(|r| (-r["val"]["key"].as_i64().unwrap(), r["val"]["i"].as_i64().unwrap()))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted by key descending, then i");
    let grown = s.rss_kib().saturating_sub(before);
    assert!(grown < 40 * 1024, "reading 20 MB of rows grew the server by {grown} KiB");
}
