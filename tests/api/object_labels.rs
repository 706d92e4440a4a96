//! Tags and aliases of object versions: their routes, refs by alias, and `objs/query`'s
//! filters, order and shapes, as Weave answers them.

use serde_json::{Value, json};

use crate::helpers::*;

const P: &str = "acme/proj";

/// Stores a version of `name`; returns its digest.
async fn publish(s: &Server, name: &str, val: Value) -> String {
    let o =
        json_ok(post_v1(s, "/obj/create", &json!({"obj": {"project_id": P, "object_id": name, "val": val}})))
            .await;
    o["digest"].as_str().unwrap().to_string()
}

async fn add_tags(s: &Server, name: &str, digest: &str, tags: &[&str]) -> (u16, Value) {
    status_json(put_v1(
        s,
        &format!("/objs/{name}/versions/{digest}/tags"),
        &json!({"project_id": P, "tags": tags}),
    ))
    .await
}

async fn set_aliases(s: &Server, name: &str, digest: &str, aliases: &[&str]) -> (u16, Value) {
    status_json(put_v1(
        s,
        &format!("/objs/{name}/aliases"),
        &json!({"project_id": P, "digest": digest, "aliases": aliases}),
    ))
    .await
}

async fn query(s: &Server, body: Value) -> Vec<Value> {
    let mut body = body;
    body["project_id"] = json!(P);
    let r = json_ok(post_v1(s, "/objs/query", &body)).await;
    r["objs"].as_array().unwrap().clone()
}

async fn read(s: &Server, name: &str, digest: &str) -> (u16, Value) {
    status_json(post_v1(
        s,
        "/obj/read",
        &json!({"project_id": P, "object_id": name, "digest": digest, "include_tags_and_aliases": true}),
    ))
    .await
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect()
}

#[tokio::test]
async fn tags_are_added_removed_listed_and_checked() {
    let s = Server::start();
    let d0 = publish(&s, "Obj", json!({"v": 0})).await;
    let d1 = publish(&s, "Obj", json!({"v": 1})).await;
    let other = publish(&s, "Other", json!({"v": 0})).await;
    assert_eq!(add_tags(&s, "Obj", &d0, &["zulu", "alpha", "zulu", "under review"]).await, (200, json!({})));
    assert_eq!(add_tags(&s, "Obj", &d0, &["alpha"]).await.0, 200, "adding again changes nothing");
    assert_eq!(add_tags(&s, "Other", &other, &["beta", "latest", "v0"]).await.0, 200);
    let (_, o) = read(&s, "Obj", &d0).await;
    assert_eq!(strings(&o["obj"]["tags"]), ["alpha", "under review", "zulu"]);
    assert_eq!(strings(&o["obj"]["aliases"]), Vec::<&str>::new(), "v0 is not the latest");
    let (_, o) = read(&s, "Obj", &d1).await;
    assert_eq!(strings(&o["obj"]["tags"]), Vec::<&str>::new(), "tags belong to one version");
    assert_eq!(strings(&o["obj"]["aliases"]), ["latest"]);
    let plain =
        json_ok(post_v1(&s, "/obj/read", &json!({"project_id": P, "object_id": "Obj", "digest": d0}))).await;
    assert!(plain["obj"].get("tags").is_none(), "only when asked for");

    let list = json_ok(get_v1(&s, "/tags?project_id=acme/proj")).await;
    assert_eq!(strings(&list["tags"]), ["alpha", "beta", "latest", "under review", "v0", "zulu"]);
    let r = status_json(post_v1(
        &s,
        &format!("/objs/Obj/versions/{d0}/tags/remove"),
        &json!({"project_id": P, "tags": ["zulu", "never-added"]}),
    ))
    .await;
    assert_eq!(r, (200, json!({})));
    let (_, o) = read(&s, "Obj", &d0).await;
    assert_eq!(strings(&o["obj"]["tags"]), ["alpha", "under review"]);

    // A version that is not stored, or a bad tag, changes nothing.
    let missing = "A".repeat(43);
    assert_eq!(add_tags(&s, "Obj", &missing, &["x"]).await.0, 404);
    assert_eq!(add_tags(&s, "Nope", &d0, &["x"]).await.0, 404);
    assert_eq!(add_tags(&s, "Obj", "latest", &["x"]).await.0, 404, "a digest, not a version name");
    for bad in ["", "my.tag", " lead", "trail ", "two  spaces", &"a".repeat(257)] {
        let (status, body) = add_tags(&s, "Obj", &d0, &["ok", bad]).await;
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "tags", 1]), "{body}");
    }
    let (status, body) = status_json(put_v1(
        &s,
        &format!("/objs/Obj/versions/{d0}/tags"),
        &json!({"project_id": P, "tags": ["x"], "colour": "red"}),
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    let list = json_ok(get_v1(&s, "/tags?project_id=acme/proj")).await;
    assert!(!strings(&list["tags"]).contains(&"x"));
    let (status, _) = status_json(get_v1(&s, "/tags")).await;
    assert_eq!(status, 422, "project_id is required");
    let (status, _) = status_json(get_v1(&s, "/tags?project_id=acme/other")).await;
    assert_eq!(status, 200, "an admin key may list any project");
}

#[tokio::test]
async fn aliases_name_one_version_and_refs_resolve_them() {
    let s = Server::start();
    let d0 = publish(&s, "Model", json!({"v": 0})).await;
    let d1 = publish(&s, "Model", json!({"v": 1})).await;
    let d2 = publish(&s, "Model", json!({"v": 2})).await;
    assert_eq!(set_aliases(&s, "Model", &d0, &["production", "stable"]).await, (200, json!({})));
    let (_, o) = read(&s, "Model", "production").await;
    assert_eq!(o["obj"]["digest"], d0.as_str());
    assert_eq!(o["obj"]["val"], json!({"v": 0}));
    assert_eq!(strings(&o["obj"]["aliases"]), ["production", "stable"]);

    // Setting an alias on another version moves it.
    set_aliases(&s, "Model", &d1, &["production"]).await;
    let (_, o) = read(&s, "Model", "production").await;
    assert_eq!(o["obj"]["version_index"], 1);
    let (_, o) = read(&s, "Model", &d0).await;
    assert_eq!(strings(&o["obj"]["aliases"]), ["stable"]);
    let (_, o) = read(&s, "Model", &d2).await;
    assert_eq!(strings(&o["obj"]["aliases"]), ["latest"]);
    set_aliases(&s, "Model", &d2, &["canary"]).await;
    let (_, o) = read(&s, "Model", "latest").await;
    assert_eq!(strings(&o["obj"]["aliases"]), ["latest", "canary"]);

    // Refs by alias read the version it names, as `:latest` does.
    let refs = json!({"refs": [
        "weave:///acme/proj/object/Model:production",
        "weave:///acme/proj/object/Model:stable/key/v",
        "weave:///acme/proj/object/Model:latest",
    ]});
    let vals = json_ok(post_v1(&s, "/refs/read_batch", &refs)).await;
    assert_eq!(vals["vals"], json!([{"v": 1}, 0, {"v": 2}]));
    let (status, _) = status_json(post_v1(
        &s,
        "/refs/read_batch",
        &json!({"refs": ["weave:///acme/proj/object/Model:nope"]}),
    ))
    .await;
    assert_eq!(status, 404);
    let (status, _) = read(&s, "Model", "nope").await;
    assert_eq!(status, 404);

    // Aliases are per object, listed per project, and removed by name.
    let other = publish(&s, "Other", json!({"x": 1})).await;
    set_aliases(&s, "Other", &other, &["production"]).await;
    let list = json_ok(get_v1(&s, "/aliases?project_id=acme/proj")).await;
    assert_eq!(strings(&list["aliases"]), ["canary", "production", "stable"]);
    let r = status_json(post_v1(
        &s,
        "/objs/Model/aliases/remove",
        &json!({"project_id": P, "aliases": ["production", "never-set"]}),
    ))
    .await;
    assert_eq!(r, (200, json!({})));
    assert_eq!(read(&s, "Model", "production").await.0, 404);
    let (_, o) = read(&s, "Other", "production").await;
    assert_eq!(o["obj"]["digest"], other.as_str(), "the other object keeps its alias");

    // Reserved or malformed names are refused; a version that is not stored is a 404.
    for bad in ["latest", "v0", "v12", "", "  ", "a/b", "a:b", &"a".repeat(129)] {
        let (status, body) = set_aliases(&s, "Model", &d0, &[bad]).await;
        assert_eq!(status, 422, "{bad:?}: {body}");
    }
    assert_eq!(set_aliases(&s, "Model", &d0, &["my-deploy.v2", "has spaces"]).await.0, 200);
    assert_eq!(set_aliases(&s, "Model", &"B".repeat(43), &["x"]).await.0, 404);
}

#[tokio::test]
async fn deleting_a_version_drops_its_tags_and_aliases() {
    let s = Server::start();
    let d0 = publish(&s, "Gone", json!({"v": 0})).await;
    let d1 = publish(&s, "Gone", json!({"v": 1})).await;
    add_tags(&s, "Gone", &d0, &["doomed"]).await;
    add_tags(&s, "Gone", &d1, &["kept"]).await;
    set_aliases(&s, "Gone", &d0, &["old"]).await;
    set_aliases(&s, "Gone", &d1, &["new"]).await;
    json_ok(post_v1(&s, "/obj/delete", &json!({"project_id": P, "object_id": "Gone", "digests": [d0]})))
        .await;
    let tags = json_ok(get_v1(&s, "/tags?project_id=acme/proj")).await;
    assert_eq!(strings(&tags["tags"]), ["kept"]);
    let aliases = json_ok(get_v1(&s, "/aliases?project_id=acme/proj")).await;
    assert_eq!(strings(&aliases["aliases"]), ["new"]);
    assert_eq!(read(&s, "Gone", "old").await.0, 404);
    assert_eq!(add_tags(&s, "Gone", &d0, &["x"]).await.0, 404, "a deleted version takes no tags");
    assert_eq!(set_aliases(&s, "Gone", &d0, &["x"]).await.0, 404);
    // Stored again, it comes back bare.
    publish(&s, "Gone", json!({"v": 0})).await;
    let (_, o) = read(&s, "Gone", &d0).await;
    assert_eq!(o["obj"]["tags"], json!([]));
}

#[tokio::test]
async fn objs_query_filters_by_tags_aliases_and_classes() {
    let s = Server::start();
    let class = |leaf: &str, base: &str| json!({"_type": leaf, "_class_name": leaf, "_bases": [base, "Object", "BaseModel"], "name": leaf});
    let m0 = publish(&s, "M", class("MyModel", "Model")).await;
    let m1 = publish(
        &s,
        "M",
        json!({"_class_name": "MyModel", "_bases": ["Model", "Object", "BaseModel"], "n": 1}),
    )
    .await;
    let ds = publish(&s, "D", class("Dataset", "Dataset")).await;
    let plain = publish(&s, "P", json!({"a": 1})).await;
    add_tags(&s, "M", &m0, &["reviewed"]).await;
    add_tags(&s, "D", &ds, &["reviewed", "gold"]).await;
    set_aliases(&s, "M", &m0, &["production"]).await;
    set_aliases(&s, "P", &plain, &["production"]).await;
    let ids = |objs: &[Value]| -> Vec<String> {
        objs.iter().map(|o| format!("{}:{}", o["object_id"].as_str().unwrap(), o["version_index"])).collect()
    };

    let objs = query(&s, json!({"filter": {"tags": ["reviewed"]}})).await;
    assert_eq!(ids(&objs), ["D:0", "M:0"]);
    let objs = query(&s, json!({"filter": {"tags": ["gold", "nope"]}})).await;
    assert_eq!(ids(&objs), ["D:0"]);
    let objs = query(&s, json!({"filter": {"tags": []}})).await;
    assert_eq!(objs.len(), 4, "an empty list filters nothing");
    let objs = query(&s, json!({"filter": {"aliases": ["production"]}})).await;
    assert_eq!(ids(&objs), ["M:0", "P:0"]);
    let objs = query(&s, json!({"filter": {"aliases": ["latest"], "object_ids": ["M"]}})).await;
    assert_eq!(ids(&objs), ["M:1"]);
    let objs = query(&s, json!({"filter": {"aliases": ["latest", "production"], "object_ids": ["M"]}})).await;
    assert_eq!(ids(&objs), ["M:0", "M:1"]);
    let objs = query(&s, json!({"filter": {"tags": ["reviewed"], "aliases": ["production"]}})).await;
    assert_eq!(ids(&objs), ["M:0"], "tags and aliases both hold");
    let objs = query(&s, json!({"filter": {"aliases": ["nope"]}})).await;
    assert!(objs.is_empty());

    let objs = query(&s, json!({"filter": {"leaf_object_classes": ["MyModel"]}})).await;
    assert_eq!(ids(&objs), ["M:0", "M:1"]);
    let objs = query(&s, json!({"filter": {"exclude_base_object_classes": ["Model"]}})).await;
    assert_eq!(ids(&objs), ["D:0"], "versions without a base class are left out too, as in Weave");
    let _ = m1;
}

#[tokio::test]
async fn objs_query_sorts_leaves_out_values_and_answers_labels() {
    let s = Server::start();
    let a0 = publish(&s, "A", json!({"v": 0})).await;
    publish(&s, "B", json!({"v": 0})).await;
    publish(&s, "A", json!({"v": 1})).await;
    add_tags(&s, "A", &a0, &["b-tag", "a-tag"]).await;
    set_aliases(&s, "A", &a0, &["stable"]).await;
    let keys = |objs: &[Value]| -> Vec<String> {
        objs.iter().map(|o| format!("{}:{}", o["object_id"].as_str().unwrap(), o["version_index"])).collect()
    };
    let objs = query(&s, json!({"sort_by": [{"field": "created_at", "direction": "desc"}]})).await;
    assert_eq!(keys(&objs), ["A:1", "B:0", "A:0"]);
    let objs =
        query(&s, json!({"sort_by": [{"field": "created_at", "direction": "asc"}], "limit": 2, "offset": 1}))
            .await;
    assert_eq!(keys(&objs), ["B:0", "A:1"]);
    let objs = query(&s, json!({"sort_by": [{"field": "object_id", "direction": "desc"}]})).await;
    assert_eq!(keys(&objs), ["B:0", "A:0", "A:1"]);
    let (status, body) = status_json(post_v1(
        &s,
        "/objs/query",
        &json!({"project_id": P, "sort_by": [{"field": "val.v", "direction": "asc"}]}),
    ))
    .await;
    assert_eq!(status, 400, "{body}");

    let objs = query(&s, json!({"metadata_only": true, "filter": {"object_ids": ["A"]}})).await;
    assert_eq!(objs.len(), 2);
    assert!(objs.iter().all(|o| o["val"] == json!({}) && o["digest"].is_string()));
    let objs = query(&s, json!({"filter": {"object_ids": ["A"]}})).await;
    assert_eq!(objs[0]["val"], json!({"v": 0}));
    assert!(objs[0].get("tags").is_none(), "only when asked for");

    let objs = query(&s, json!({"include_tags_and_aliases": true})).await;
    assert_eq!(keys(&objs), ["A:0", "A:1", "B:0"]);
    assert_eq!(objs[0]["tags"], json!(["a-tag", "b-tag"]));
    assert_eq!(objs[0]["aliases"], json!(["stable"]));
    assert_eq!(objs[1]["tags"], json!([]));
    assert_eq!(objs[1]["aliases"], json!(["latest"]));
    assert_eq!(objs[2]["aliases"], json!(["latest"]));
    let read = json_ok(post_v1(
        &s,
        "/obj/read",
        &json!({"project_id": P, "object_id": "A", "digest": "stable", "metadata_only": true}),
    ))
    .await;
    assert_eq!(read["obj"]["val"], json!({}));
    assert_eq!(read["obj"]["digest"], a0.as_str());
}
