//! The seed platforms' policies end to end: who gets what at disposal, manager
//! chains, grace, reprovisioning, the gate, the ledger, the brake, legal hold.

use super::*;

async fn panopto_caller_gets_everything(b: Backend) {
    let app = policy_app(b, "[default]\ntargets = [\"caller\"]\n").await;
    let admin_id = create_user(&app, "platform-admin@example.edu").await;
    let person = create_user(&app, "leaver@example.edu").await;
    let a = Admin::new(&app);
    a.put_item("recording", "r1", &person, false, None).await;
    a.put_item("recording", "r2", &person, false, None).await;
    a.put_item("folder", "home", &person, true, None).await;
    a.put_item("recording", "r3", &person, false, Some(("folder", "home")))
        .await;
    // DELETE by the IdP token bound to the platform admin: `caller` is that admin.
    let idp = app.token_acting_as("default", Scope::Scim, "platform-admin@example.edu");
    delete_user(&app, &idp, &person).await;
    for id in ["r1", "r2", "r3"] {
        assert_eq!(
            a.item("recording", id).await["owner"],
            admin_id.as_str(),
            "{id}"
        );
    }
    let home = a.item("folder", "home").await;
    assert_eq!(home["owner"], admin_id.as_str());
    assert_eq!(
        home["parent"],
        json!({"kind": "folder", "id": "custodian-archive"})
    );
    assert_eq!(home["sharedWith"], json!([admin_id]));
    assert!(
        home["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("(archived "))
    );
    let (_, ds) = a.call(Method::GET, "/disposals?state=done", None).await;
    let d = &ds["Resources"][0];
    assert_eq!(d["counts"]["transferred"], 3);
    assert_eq!(d["counts"]["archived"], 1);
    let (_, receipt) = a
        .call(
            Method::GET,
            &format!("/disposals/{}", d["id"].as_str().unwrap_or_default()),
            None,
        )
        .await;
    assert_eq!(receipt["totalItems"], 4);
    assert!(
        receipt["items"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|i| i["targetLink"] == "caller")
    );
    assert_eq!(
        app.req(Method::GET, &format!("/Users/{person}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        404
    );
    // Per-item history: created by the admin token, then moved by the disposal.
    let (s, h) = a
        .call(Method::GET, "/content/recording/r1/history", None)
        .await;
    assert_eq!(s, 200, "{h}");
    let actions: Vec<&str> = h["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["content.created", "disposal.transfer"]);
    assert_eq!(h["history"][1]["toOwner"], admin_id.as_str());
}
crate::both_backends!(panopto_style, super::panopto_caller_gets_everything);

async fn echovideo_orphans_and_anonymises(b: Backend) {
    let policy = "[default]\nkinds = { recording = \"orphan\", draft = \"delete\" }\nuser_data = { analytics = \"anonymize\", favorite = \"delete\" }\n";
    let app = policy_app(b, policy).await;
    let mut u = user_body("Zelda.Quist@example.edu");
    u["name"] = json!({"givenName": "Zelda", "familyName": "Quistorff"});
    u["displayName"] = json!("Zelda Quistorff");
    u["emails"] = json!([{"value": "Zelda.Quist@example.edu", "type": "work"}, {"value": "zq-private@mail.example", "type": "home"}]);
    u["externalId"] = json!("00uZELDA");
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&u)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201);
    let person = v["id"].as_str().expect("id").to_string();
    let keeper = create_user(&app, "keeper@example.edu").await;
    let a = Admin::new(&app);
    a.put_item("recording", "v1", &person, false, None).await;
    a.put_item("draft", "d1", &person, false, None).await;
    for (cat, id) in [("analytics", "a1"), ("analytics", "a2"), ("favorite", "f1")] {
        let (s, v) = a
            .call(
                Method::PUT,
                &format!("/user-data/{cat}/{id}"),
                Some(json!({"user": person})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (_, plan) = a
        .call(Method::GET, &format!("/users/{person}/disposal-plan"), None)
        .await;
    delete_user(&app, &app.token, &person).await;
    let v1 = a.item("recording", "v1").await;
    assert_eq!(
        (v1["owner"].clone(), v1["ownerState"].clone()),
        (Value::Null, json!("orphaned"))
    );
    assert_eq!(a.call(Method::GET, "/content/draft/d1", None).await.0, 404);
    let (_, orphans) = a.call(Method::GET, "/content?orphaned=true", None).await;
    assert_eq!(orphans["totalResults"], 1);
    // Orphans can be reassigned.
    let (s, _) = a
        .call(
            Method::POST,
            "/content:reassign",
            Some(json!({"to": keeper, "items": [{"kind": "recording", "id": "v1"}]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(a.item("recording", "v1").await["owner"], keeper.as_str());
    // …or by selection: every orphan of a kind.
    a.put_item("recording", "v2", &keeper, false, None).await;
    let (s, _) = a
        .call(
            Method::POST,
            "/content:reassign",
            Some(json!({"to": keeper, "orphaned": true, "owner": keeper})),
        )
        .await;
    assert_eq!(s, 400, "owner and orphaned together are ambiguous");
    let (s, r) = a
        .call(
            Method::POST,
            "/content:reassign",
            Some(json!({"to": keeper, "owner": keeper, "kind": "recording"})),
        )
        .await;
    assert_eq!((s, r["items"].as_i64()), (200, Some(2)), "{r}");
    // Analytics point to a fresh "Deleted User" stub, not to the person's id.
    let (_, ds) = a.call(Method::GET, "/disposals?state=done", None).await;
    assert_eq!(
        ds["Resources"][0]["planHash"], plan["hash"],
        "preview hash = receipt hash"
    );
    assert_eq!(ds["Resources"][0]["counts"]["userData.anonymize"], 2);
    assert_eq!(ds["Resources"][0]["counts"]["userData.delete"], 1);
    // The person's name and emails are nowhere in the database.
    for needle in [
        "Zelda",
        "Quistorff",
        "zq-private@mail.example",
        "Zelda.Quist@example.edu",
        "00uZELDA",
    ] {
        assert!(!app.database_contains(needle), "{needle} is still stored");
    }
}
crate::both_backends!(echovideo_style, super::echovideo_orphans_and_anonymises);

async fn data_science_named_user_and_labelled_folder(b: Backend) {
    let policy = "[default]\ntargets = [\"user:records@example.edu\"]\npersonal_folder = { action = \"archive\", label = \"(from {displayName})\" }\n";
    let app = policy_app(b, policy).await;
    let records = create_user(&app, "records@example.edu").await;
    let mut u = user_body("ann@example.edu");
    u["displayName"] = json!("Ann Lee");
    let (_, v) = body(
        app.req(Method::POST, "/Users")
            .json(&u)
            .send()
            .await
            .expect("send"),
    )
    .await;
    let person = v["id"].as_str().expect("id").to_string();
    let a = Admin::new(&app);
    a.put_item("folder", "ann-home", &person, true, None).await;
    a.put_item(
        "notebook",
        "nb1",
        &person,
        false,
        Some(("folder", "ann-home")),
    )
    .await;
    delete_user(&app, &app.token, &person).await;
    let home = a.item("folder", "ann-home").await;
    assert_eq!(home["title"], "(from Ann Lee)");
    assert_eq!(
        home["sharedWith"],
        json!([records]),
        "shared only with the new owner"
    );
    assert_eq!(home["parent"]["id"], "custodian-archive");
    assert_eq!(a.item("notebook", "nb1").await["owner"], records.as_str());
}
crate::both_backends!(
    data_science_style,
    super::data_science_named_user_and_labelled_folder
);

async fn manager_chain(b: Backend) {
    let policy = "[default]\ntargets = [\"manager\", \"custodian\"]\ncustodian = \"custodian@example.edu\"\n";
    let app = policy_app(b, policy).await;
    let a = Admin::new(&app);
    let with_manager = |name: &str, mgr: &str| {
        let mut u = user_body(name);
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
            json!({"manager": {"value": mgr}});
        u
    };
    let boss = create_user(&app, "boss@example.edu").await;
    let (_, v) = body(
        app.req(Method::POST, "/Users")
            .json(&with_manager("e1@example.edu", &boss))
            .send()
            .await
            .expect("send"),
    )
    .await;
    let e1 = v["id"].as_str().expect("id").to_string();
    a.put_item("recording", "m1", &e1, false, None).await;
    delete_user(&app, &app.token, &e1).await;
    assert_eq!(
        a.item("recording", "m1").await["owner"],
        boss.as_str(),
        "manager active → manager"
    );
    // Manager disposed → custodian.
    let (_, v) = body(
        app.req(Method::POST, "/Users")
            .json(&with_manager("e2@example.edu", &boss))
            .send()
            .await
            .expect("send"),
    )
    .await;
    let e2 = v["id"].as_str().expect("id").to_string();
    a.put_item("recording", "m2", &e2, false, None).await;
    delete_user(&app, &app.token, &boss).await;
    let (_, plan) = a
        .call(Method::GET, &format!("/users/{e2}/disposal-plan"), None)
        .await;
    assert!(
        plan["target"].is_null(),
        "manager disposed, no custodian yet: no target ({plan})"
    );
    assert_eq!(
        plan["summary"]["recording"]["orphan"], 1,
        "the preview reports the orphan"
    );
    let custodian = create_user(&app, "custodian@example.edu").await;
    let (_, plan) = a
        .call(Method::GET, &format!("/users/{e2}/disposal-plan"), None)
        .await;
    assert_eq!(
        plan["target"],
        json!({"userId": custodian, "link": "custodian"})
    );
    delete_user(&app, &app.token, &e2).await;
    assert_eq!(
        a.item("recording", "m2").await["owner"],
        custodian.as_str(),
        "manager disposed → custodian"
    );
    // Neither → orphaned and reported, never deleted.
    let (_, v) = body(
        app.req(Method::POST, "/Users")
            .json(&with_manager("e3@example.edu", "nobody"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    let e3 = v["id"].as_str().expect("id").to_string();
    a.put_item("recording", "m3", &e3, false, None).await;
    delete_user(&app, &app.token, &custodian).await;
    delete_user(&app, &app.token, &e3).await;
    assert_eq!(a.item("recording", "m3").await["ownerState"], "orphaned");
    let (_, ds) = a.call(Method::GET, "/disposals?state=done", None).await;
    let last = ds["Resources"]
        .as_array()
        .and_then(|r| r.iter().find(|d| d["userId"] == e3.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["counts"]["orphaned"], 1);
}
crate::both_backends!(manager_chain_links, super::manager_chain);

async fn okta_deactivate_only_runs_once_after_grace(b: Backend) {
    let app = policy_app(b, "[default]\ngrace_period = \"30d\"\n").await;
    let a = Admin::new(&app);
    let person = create_user(&app, "okta-leaver@example.edu").await;
    let stays = create_user(&app, "okta-returner@example.edu").await;
    a.put_item("recording", "o1", &person, false, None).await;
    let deactivate = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
    for id in [&person, &stays] {
        let (s, _) = body(
            app.req(Method::PATCH, &format!("/Users/{id}"))
                .json(&deactivate)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(s, 200);
    }
    // Access is revoked at once.
    let g = gate(&app, json!({"userName": "OKTA-LEAVER@example.edu"})).await;
    assert_eq!(
        (g["decision"].as_str(), g["reason"].as_str()),
        (Some("deny"), Some("suspended"))
    );
    // A repeated deactivation keeps the original schedule.
    app.req(Method::PATCH, &format!("/Users/{person}"))
        .json(&deactivate)
        .send()
        .await
        .expect("send");
    let (_, sched) = a
        .call(Method::GET, "/disposals?state=scheduled", None)
        .await;
    assert_eq!(sched["Resources"].as_array().map(Vec::len), Some(2));
    // Reactivation before expiry cancels.
    let reactivate = patch_body(json!([{"op": "replace", "value": {"active": true}}]));
    app.req(Method::PATCH, &format!("/Users/{stays}"))
        .json(&reactivate)
        .send()
        .await
        .expect("send");
    app.clock.advance(chrono::Duration::days(29));
    assert_eq!(app.deprov.run_due(&app.db).expect("run"), 0, "not due yet");
    app.clock.advance(chrono::Duration::days(2));
    assert_eq!(app.deprov.run_due(&app.db).expect("run"), 1);
    assert_eq!(app.deprov.run_due(&app.db).expect("run"), 0, "exactly once");
    assert_eq!(
        app.req(Method::GET, &format!("/Users/{person}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        app.req(Method::GET, &format!("/Users/{stays}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    let g = gate(&app, json!({"userName": "okta-leaver@example.edu"})).await;
    assert_eq!(g["reason"], "deprovisioned");
    let (_, done) = a.call(Method::GET, "/disposals?state=done", None).await;
    assert_eq!(done["Resources"][0]["cause"], "grace");
}
crate::both_backends!(
    okta_deactivate_only,
    super::okta_deactivate_only_runs_once_after_grace
);

async fn entra_reprovision_modes(b: Backend) {
    for mode in ["new", "relink", "reject"] {
        let app = policy_app(b, &format!("[default]\ntargets = [\"user:heir@example.edu\"]\ntombstone = {{ on_scim_create = \"{mode}\" }}\n")).await;
        let a = Admin::new(&app);
        create_user(&app, "heir@example.edu").await;
        let mut u = user_body("upn@contoso.example");
        u["externalId"] = json!("entra-object-1");
        let (_, v) = body(
            app.req(Method::POST, "/Users")
                .json(&u)
                .send()
                .await
                .expect("send"),
        )
        .await;
        let person = v["id"].as_str().expect("id").to_string();
        a.put_item("recording", "e1", &person, false, None).await;
        let disable = patch_body(json!([{"op": "Replace", "path": "active", "value": "False"}]));
        app.req(Method::PATCH, &format!("/Users/{person}"))
            .json(&disable)
            .send()
            .await
            .expect("send");
        app.clock.advance(chrono::Duration::days(30));
        delete_user(&app, &app.token, &person).await;
        let (_, done) = a.call(Method::GET, "/disposals?state=done", None).await;
        assert_eq!(
            done["Resources"].as_array().map(Vec::len),
            Some(1),
            "the scheduled disposal was completed, not duplicated"
        );
        // Entra re-finds nobody, then POSTs the same person again.
        let (s, v) = body(
            app.req(Method::POST, "/Users")
                .json(&u)
                .send()
                .await
                .expect("send"),
        )
        .await;
        match mode {
            "reject" => {
                assert_eq!(s, 409, "{v}");
                assert!(
                    v["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("deprovisioned"))
                );
            }
            _ => {
                assert_eq!(s, 201, "{mode}: {v}");
                let new_id = v["id"].as_str().expect("id").to_string();
                assert_ne!(new_id, person);
                let owner = a.item("recording", "e1").await["owner"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if mode == "relink" {
                    assert_eq!(owner, new_id, "relink hands the content back");
                } else {
                    assert_ne!(owner, new_id);
                }
                let g = gate(&app, json!({"userName": "upn@contoso.example"})).await;
                assert_eq!(g["decision"], "allow", "the tombstone was lifted");
            }
        }
    }
}
crate::both_backends!(entra_reprovision, super::entra_reprovision_modes);

async fn sso_gate_denies_every_identifier(b: Backend) {
    let app = policy_app(b, "[default]\ngate = { unknown = \"deny\" }\n").await;
    let a = Admin::new(&app);
    let mut u = user_body("Sam.Sso@Example.edu");
    u["externalId"] = json!("00uSAM");
    u["emails"] =
        json!([{"value": "Sam.Sso@Example.edu", "type": "work"}, {"value": "sam@alias.example"}]);
    let (_, v) = body(
        app.req(Method::POST, "/Users")
            .json(&u)
            .send()
            .await
            .expect("send"),
    )
    .await;
    let person = v["id"].as_str().expect("id").to_string();
    let (s, _) = a
        .call(
            Method::PUT,
            &format!("/users/{person}/sso-subjects"),
            Some(json!({"issuer": "https://idp.example.edu/", "subject": "248289761001"})),
        )
        .await;
    assert_eq!(s, 204);
    let g = gate(
        &app,
        json!({"sso": {"issuer": "https://idp.example.edu", "subject": "248289761001"}}),
    )
    .await;
    assert_eq!(
        (g["decision"].as_str(), g["userId"].as_str()),
        (Some("allow"), Some(person.as_str()))
    );
    assert_eq!(g["matched"], json!(["sso"]));
    delete_user(&app, &app.token, &person).await;
    for req in [
        json!({"userName": "sam.sso@example.edu"}),
        json!({"email": ["  SAM.SSO@EXAMPLE.EDU "]}),
        json!({"email": "Sam@Alias.Example"}),
        json!({"externalId": " 00uSAM "}),
        json!({"sso": {"issuer": "https://idp.example.edu/", "subject": "248289761001"}}),
    ] {
        let g = gate(&app, req.clone()).await;
        assert_eq!(
            (g["decision"].as_str(), g["reason"].as_str()),
            (Some("deny"), Some("deprovisioned")),
            "{req}"
        );
    }
    // SSO subjects are case-sensitive: another subject is unknown (denied by policy).
    let g = gate(
        &app,
        json!({"sso": {"issuer": "https://idp.example.edu", "subject": "248289761001X"}}),
    )
    .await;
    assert_eq!(g["reason"], "unknown");
    for needle in [
        "sam.sso@example.edu",
        "sam@alias.example",
        "00uSAM",
        "248289761001",
    ] {
        assert!(
            !app.database_contains(needle),
            "{needle} is stored in the clear"
        );
    }
    // Tombstones list identifier types only; an admin can lift by identifier.
    let (_, ts) = a.call(Method::GET, "/tombstones", None).await;
    assert_eq!(
        ts["Resources"][0]["identifierTypes"],
        json!(["email", "externalId", "sso", "userName"])
    );
    let (s, _) = a
        .call(
            Method::POST,
            "/tombstones:lift",
            Some(json!({"userName": "sam.sso@example.edu"})),
        )
        .await;
    assert_eq!(s, 200);
    let g = gate(&app, json!({"userName": "sam.sso@example.edu"})).await;
    assert_eq!(g["reason"], "unknown");
    // Scopes: a SCIM token cannot call the gate or the admin API.
    let r = app
        .client
        .post(format!("{}/gate/v1/check", app.addr))
        .bearer_auth(&app.token)
        .json(&json!({"userName": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
    let r = app
        .client
        .get(format!("{}/admin/v1/tombstones", app.addr))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
}
crate::both_backends!(sso_gate, super::sso_gate_denies_every_identifier);

async fn ledger_rules_and_import(b: Backend) {
    let app = policy_app(b, "[default]\n").await;
    let a = Admin::new(&app);
    let owner = create_user(&app, "owner@example.edu").await;
    let ledger = app.token_for("default", Scope::Ledger);
    // The ledger scope writes content; it cannot read admin lists.
    let r = app
        .client
        .put(format!("{}/admin/v1/content/recording/x1", app.addr))
        .bearer_auth(&ledger)
        .json(&json!({"owner": owner}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);
    let r = app
        .client
        .get(format!("{}/admin/v1/content", app.addr))
        .bearer_auth(&ledger)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
    // Unknown owners and bad bodies are precise errors that write nothing.
    let (s, v) = a
        .call(
            Method::PUT,
            "/content/recording/x2",
            Some(json!({"owner": "nope"})),
        )
        .await;
    assert_eq!((s, v["scimType"].as_str()), (400, Some("invalidValue")));
    let (s, _) = a
        .call(
            Method::PUT,
            "/content/recording/x2",
            Some(json!({"owner": owner, "colour": "red"})),
        )
        .await;
    assert_eq!(s, 400);
    // A replaced item answers 200.
    let (s, _) = a
        .call(
            Method::PUT,
            "/content/recording/x1",
            Some(json!({"owner": owner, "title": "T2"})),
        )
        .await;
    assert_eq!(s, 200);
    // NDJSON import: streamed, counted, bad lines reported by number.
    let mut nd = String::new();
    for i in 0..2500 {
        nd.push_str(&format!(
            "{{\"kind\":\"slide\",\"id\":\"s{i}\",\"ownerUserName\":\"OWNER@example.edu\"}}\n"
        ));
    }
    nd.push_str("{\"kind\":\"slide\"}\nnot json\n");
    let r = app
        .client
        .post(format!("{}/admin/v1/content:import", app.addr))
        .bearer_auth(&ledger)
        .header("Content-Type", "application/x-ndjson")
        .body(nd)
        .send()
        .await
        .expect("send");
    let (s, v) = body(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["created"].as_i64(),
            v["rejected"].as_i64(),
            v["lines"].as_i64()
        ),
        (Some(2500), Some(2), Some(2502)),
        "{v}"
    );
    assert_eq!(v["errors"][0]["line"], 2501);
    let (_, l) = a
        .call(
            Method::GET,
            &format!("/content?owner={owner}&kind=slide&count=0"),
            None,
        )
        .await;
    assert_eq!(l["totalResults"], 2500);
    // A user-data write may name its user as user, owner, userId or userName.
    for (n, b) in [
        json!({"owner": owner}),
        json!({"userId": owner}),
        json!({"userName": "OWNER@example.edu"}),
    ]
    .into_iter()
    .enumerate()
    {
        let (s, v) = a
            .call(Method::PUT, &format!("/user-data/like/alias{n}"), Some(b))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    // User-data import: by id or userName; unknown users are rejected by line.
    let nd = format!(
        "{{\"category\":\"favorite\",\"id\":\"f1\",\"user\":\"{owner}\"}}\n{{\"category\":\"like\",\"id\":\"l1\",\"userName\":\"owner@example.edu\"}}\n{{\"category\":\"like\",\"id\":\"l2\",\"userName\":\"ghost@example.edu\"}}\n"
    );
    let r = app
        .client
        .post(format!("{}/admin/v1/user-data:import", app.addr))
        .bearer_auth(&ledger)
        .body(nd)
        .send()
        .await
        .expect("send");
    let (s, v) = body(r).await;
    assert_eq!(
        (s, v["created"].as_i64(), v["rejected"].as_i64()),
        (200, Some(2), Some(1)),
        "{v}"
    );
    assert_eq!(v["errors"][0]["line"], 3);
    // Transfer without deleting anyone.
    let other = create_user(&app, "other@example.edu").await;
    let (s, t) = a
        .call(
            Method::POST,
            &format!("/users/{owner}/transfer"),
            Some(json!({"to": other})),
        )
        .await;
    assert_eq!((s, t["items"].as_i64()), (200, Some(2501)));
    assert_eq!(
        app.req(Method::GET, &format!("/Users/{owner}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    // Content naming a disposed owner: 409 naming the recipient.
    delete_user(&app, &app.token, &other).await;
    let (s, v) = a
        .call(
            Method::PUT,
            "/content/recording/late",
            Some(json!({"owner": other})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
}
crate::both_backends!(ledger_and_import, super::ledger_rules_and_import);

async fn brake_holds_the_sixth_and_release_completes_it(b: Backend) {
    let app = policy_app(b, "[default]\nbrake = { max_disposals_per_hour = 5 }\n").await;
    let a = Admin::new(&app);
    let mut people = vec![];
    for i in 0..7 {
        let id = create_user(&app, &format!("b{i}@example.edu")).await;
        a.put_item("recording", &format!("br{i}"), &id, false, None)
            .await;
        people.push(id);
    }
    for id in &people {
        delete_user(&app, &app.token, id).await;
    }
    let (_, done) = a.call(Method::GET, "/disposals?state=done", None).await;
    assert_eq!(done["Resources"].as_array().map(Vec::len), Some(5));
    let (_, held) = a.call(Method::GET, "/disposals?state=held", None).await;
    let held = held["Resources"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        held.len(),
        2,
        "the 6th tripped the brake; the 7th is held by it"
    );
    // Held: access revoked (404 to SCIM, gate denies), nothing moved.
    let sixth = &people[5];
    assert_eq!(
        app.req(Method::GET, &format!("/Users/{sixth}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        404
    );
    let g = gate(&app, json!({"userName": "b5@example.edu"})).await;
    assert_eq!(
        (g["decision"].as_str(), g["reason"].as_str()),
        (Some("deny"), Some("deprovisioned"))
    );
    assert_eq!(a.item("recording", "br5").await["owner"], sixth.as_str());
    // Release completes it (past the brake).
    let d6 = held
        .iter()
        .find(|d| d["userId"] == sixth.as_str())
        .and_then(|d| d["id"].as_str())
        .unwrap_or_default()
        .to_string();
    let (s, r) = a
        .call(Method::POST, &format!("/disposals/{d6}/release"), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(a.item("recording", "br5").await["ownerState"], "orphaned");
    let (s, _) = a
        .call(Method::POST, &format!("/disposals/{d6}/release"), None)
        .await;
    assert_eq!(s, 409, "a completed disposal cannot be released again");
    // Reset re-arms the breaker; an hour later disposals flow again.
    let (s, _) = a.call(Method::POST, "/brake/reset", None).await;
    assert_eq!(s, 204);
    app.clock.advance(chrono::Duration::minutes(61));
    let later = create_user(&app, "later@example.edu").await;
    delete_user(&app, &app.token, &later).await;
    let (_, done) = a.call(Method::GET, "/disposals?state=done", None).await;
    assert_eq!(done["Resources"].as_array().map(Vec::len), Some(7));
    // Events: brake.tripped once, disposal.held twice, in commit order.
    let (_, ev) = a
        .call(Method::GET, "/events?after=0&count=1000", None)
        .await;
    let types: Vec<String> = ev["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["type"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "brake.tripped").count(),
        1,
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| *t == "disposal.held").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "user.disposed").count(), 7);
    let seqs: Vec<i64> = ev["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["seq"].as_i64())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gap-free, in order"
    );
    let (_, tail) = a
        .call(
            Method::GET,
            &format!("/events?after={}", seqs.len() - 1),
            None,
        )
        .await;
    assert_eq!(tail["events"].as_array().map(Vec::len), Some(1));
}
crate::both_backends!(brake, super::brake_holds_the_sixth_and_release_completes_it);

async fn legal_hold_pauses_disposal(b: Backend) {
    let app = policy_app(b, "[default]\n").await;
    let a = Admin::new(&app);
    let person = create_user(&app, "held@example.edu").await;
    a.put_item("recording", "lh1", &person, false, None).await;
    let (s, _) = a
        .call(Method::PUT, &format!("/users/{person}/legal-hold"), None)
        .await;
    assert_eq!(s, 204);
    let (s, v) = a
        .call(Method::POST, &format!("/users/{person}/dispose"), None)
        .await;
    assert_eq!((s, v["reason"].as_str()), (202, Some("legal_hold")), "{v}");
    let d = v["disposalId"].as_str().unwrap_or_default().to_string();
    // A held dispose-now suspends the person; nothing moves.
    let (_, u) = body(
        app.req(Method::GET, &format!("/Users/{person}"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(u["active"], false);
    // The same transition as a SCIM active=false: state, column and clock.
    let tenant = app.default_tenant_id();
    let row = app
        .db
        .read(|c| custodian::store::users::get_any(c, &tenant, &person))
        .expect("row");
    assert_eq!(row.state, custodian::domain::UserState::Suspended);
    assert!(!row.active, "the active column follows the state");
    assert!(row.suspended_at.is_some(), "the grace clock started");
    assert_eq!(a.item("recording", "lh1").await["owner"], person.as_str());
    let (s, _) = a
        .call(Method::POST, &format!("/disposals/{d}/release"), None)
        .await;
    assert_eq!(s, 409, "not while under legal hold");
    let (s, _) = a
        .call(Method::DELETE, &format!("/users/{person}/legal-hold"), None)
        .await;
    assert_eq!(s, 204);
    let (s, r) = a
        .call(Method::POST, &format!("/disposals/{d}/release"), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["disposalId"], d.as_str());
    // Dispose-now with a stale plan hash is refused.
    let other = create_user(&app, "other2@example.edu").await;
    let (_, plan) = a
        .call(Method::GET, &format!("/users/{other}/disposal-plan"), None)
        .await;
    a.put_item("recording", "late-item", &other, false, None)
        .await;
    let r = app
        .client
        .post(format!("{}/admin/v1/users/{other}/dispose", app.addr))
        .bearer_auth(&a.token)
        .header(
            "If-Match",
            format!("\"{}\"", plan["hash"].as_str().unwrap_or_default()),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 412);
    let (_, plan) = a
        .call(Method::GET, &format!("/users/{other}/disposal-plan"), None)
        .await;
    let r = app
        .client
        .post(format!("{}/admin/v1/users/{other}/dispose", app.addr))
        .bearer_auth(&a.token)
        .header("If-Match", plan["hash"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("send");
    let (s, receipt) = body(r).await;
    assert_eq!(
        (s, receipt["planHash"].clone()),
        (200, plan["hash"].clone()),
        "receipt hash = preview hash"
    );
}
crate::both_backends!(legal_hold, super::legal_hold_pauses_disposal);
