//! Contact policies applied live (model version 2): contact events join the
//! customer's history, so `max_per_customer` rules and conflicts hold as of
//! today, and a hard `max_total` rule on contact cost burns down as contacts
//! are made.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};

/// The fixture's scenario with channels and contact policies, its horizon
/// starting today (contacts made today fall in it and in every window):
/// bundle (email, promo, today), single (sms, 1 a contact, planned in 3 days).
/// - `promo_cap`: at most one promo contact per customer (never binding in
///   the plan: one promo offer);
/// - `sms_budget`: at most 2 of sms contact cost in all: the plan spends it on
///   g1 (gold: 1.2 × 5 × .4 − 1) and s4 (5 × .5 − 1), not s1 (5 × .4 − 1);
/// - `email_then_sms`: no sms within 2 days of an email: the plan's single
///   comes 3 days after its bundle, but a single shown now would not;
/// - the history: s4 (the eighth customer) had an email yesterday, so a
///   single shown to s4 now falls in that window (the plan's, in 3 days, not).
fn contact_fixture() -> Fixture {
    let f = Fixture::new(false, allot_api::DEFAULT_MAX_PLAN_AGE);
    let scenario = f.dir.path().join("scenario");
    let today = chrono::Utc::now().date_naive();
    let files = [
        ("scenario.toml", format!("[horizon]\nstart = \"{today}\"\ndays = 7\n\n[tiers]\ngold = 1.2\nstandard = 1.0\n")),
        ("offers.csv", format!("offer_id,margin,discount_cost,channel,tags,cost_per_contact,contact_date\nbundle,10,0,email,promo,0,\nsingle,5,0,sms,,1,{}\n", today + chrono::Days::new(3))),
        ("rules.csv", "rule_id,kind,measure,bound,penalty,channels,tags,offers\npromo_cap,max_per_customer,contacts,1,,,promo,\nsms_budget,max_total,contact_cost,2,,sms,,\n".to_string()),
        ("conflicts.csv", "conflict_id,within_days,offers_a,offers_b,channels_a,channels_b\nemail_then_sms,2,,,email,sms\n".to_string()),
        ("contact_history.csv", format!("customer_id,date,channel,tags,offer_id\ns4,{},email,,\n", today - chrono::Days::new(1))),
    ];
    for (name, text) in files {
        std::fs::write(scenario.join(name), text).unwrap();
    }
    let uptake = std::fs::read_to_string(scenario.join("uptake.csv")).unwrap() + "s4,single,0.5\n";
    std::fs::write(scenario.join("uptake.csv"), uptake).unwrap();
    let store = f.store();
    let id = plan_into(&store, &scenario);
    allot_api::live::import::open_store_live(store.root(), None).unwrap().activate(&store, &id).unwrap();
    let mut f = f;
    f.restart();
    f
}

fn offered(decision: &Value) -> Vec<String> {
    decision["offers"].as_array().unwrap().iter().map(|o| o["offer_id"].as_str().unwrap().to_string()).collect()
}

fn reason(decision: &Value, offer: &str) -> String {
    let excluded = decision["excluded"].as_array().unwrap();
    excluded.iter().find(|e| e["offer_id"] == offer).map(|e| e["reason"].as_str().unwrap().to_string()).unwrap_or_default()
}

fn contact(id: &str, customer: &str, offer: &str) -> Value {
    json!({ "event_id": id, "customer_id": customer, "offer_id": offer, "date": chrono::Utc::now().date_naive().to_string() })
}

#[tokio::test]
async fn contact_events_apply_rules_conflicts_and_burn_down_budgets() {
    let mut f = contact_fixture();
    let g1 = f.offers("g1").await;
    assert_eq!(offered(&g1), ["bundle", "single"], "{g1}");
    // s4's history (yesterday's email) opens the window a single shown today falls in.
    let s4 = f.offers("s4").await;
    assert_eq!(offered(&s4), ["bundle"], "{s4}");
    assert_eq!(reason(&s4, "single"), "live:conflict");
    assert_eq!(reason(&f.offers("s1").await, "single"), "not_selected:rule:sms_budget", "the plan's own reason");

    // Two sms contacts (1 each) spend the whole sms budget: g1's single goes too.
    for (id, customer) in [("k2", "s2"), ("k3", "s3")] {
        let (status, body) = f.post("/v1/events/contact", DECISION, contact(id, customer, "single")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let g1 = f.offers("g1").await;
    assert_eq!(offered(&g1), ["bundle"], "{g1}");
    assert_eq!(reason(&g1, "single"), "live:rule:sms_budget");

    // g1 got the bundle by email: its promo room is used, and sms is in the email's window.
    let (status, body) = f.post("/v1/events/contact", DECISION, contact("k1", "g1", "bundle")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let g1 = f.offers("g1").await;
    assert_eq!(offered(&g1), Vec::<String>::new(), "{g1}");
    assert_eq!(reason(&g1, "bundle"), "live:rule:promo_cap");
    assert_eq!(reason(&g1, "single"), "live:conflict");
    assert_eq!(offered(&f.offers("g2").await), ["bundle"], "other customers keep their room");

    // Idempotent by id: the same body again changes nothing; another body is refused.
    let (status, body) = f.post("/v1/events/contact", DECISION, contact("k1", "g1", "bundle")).await;
    assert_eq!((status, &body["duplicate"]), (StatusCode::OK, &json!(true)), "{body}");
    let (status, body) = f.post("/v1/events/contact", DECISION, contact("k1", "g2", "bundle")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // A contact dated in year 9999 would have counted against g2 for ever.
    let mut far = contact("k9", "g2", "bundle");
    far["date"] = json!("9999-12-31");
    let (status, body) = f.post("/v1/events/contact", DECISION, far).await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && body.to_string().contains("2100-12-31"), "{status} {body}");
    assert_eq!(offered(&f.offers("g2").await), ["bundle"], "nothing of it counted");

    // A restart folds the same contacts.
    f.restart();
    assert_eq!(reason(&f.offers("g1").await, "bundle"), "live:rule:promo_cap");
    assert_eq!(reason(&f.offers("s4").await, "single"), "live:conflict");

    // Erasure deletes g1's contacts (its personal data), for good: after a
    // restart g1 may get the bundle again; the sms budget stays spent.
    let (status, body) = f.call("DELETE", "/v1/customers/g1/personal-data", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    f.restart();
    let g1 = f.offers("g1").await;
    assert_eq!(offered(&g1), ["bundle"], "{g1}");
    assert_eq!(reason(&g1, "single"), "live:rule:sms_budget");
}

#[tokio::test]
async fn contact_events_are_validated() {
    let f = contact_fixture();
    let today = chrono::Utc::now().date_naive().to_string();
    for (body, what) in [
        (json!({ "event_id": "x", "customer_id": "g1", "offer_id": "nope", "date": today }), "offer_id"),
        (json!({ "event_id": "x", "customer_id": "zz", "offer_id": "bundle", "date": today }), "customer_id"),
        (json!({ "event_id": "x", "customer_id": "g1", "offer_id": "bundle", "channel": "sms", "date": today }), "channel"),
        (json!({ "event_id": "", "customer_id": "g1", "offer_id": "bundle", "date": today }), "event_id"),
    ] {
        let (status, reply) = f.post("/v1/events/contact", DECISION, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(what), "{reply}");
    }
    for body in [
        json!({ "event_id": "x", "customer_id": "g1", "offer_id": "bundle", "date": "2026-13-01" }),
        json!({ "event_id": "x", "customer_id": "g1", "offer_id": "bundle", "date": today, "chanel": "email" }),
    ] {
        let (status, reply) = f.post("/v1/events/contact", DECISION, body).await;
        assert!(status.is_client_error(), "{status} {reply}");
    }
    // Nothing refused was applied.
    assert_eq!(offered(&f.offers("g1").await), ["bundle", "single"]);
}
