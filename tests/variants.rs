//! What-if variants: one test per perturbation kind on the example scenario,
//! each checking its effect and that the base is left untouched; variants of
//! variants compose; bad variants are errors naming file and line.

use std::fs;
use std::path::{Path, PathBuf};

use allot_optimizer::Problem;
use allot_scenarios::load_scenario;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail-v1")
}

/// Writes a variant of `base` with the given perturbation TOML into `dir/name`.
fn variant(dir: &Path, name: &str, base: &Path, perturbations: &str) -> PathBuf {
    let d = dir.join(name);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("scenario.toml"), format!("base = {:?}\n\n{perturbations}", base.display().to_string())).unwrap();
    d
}

/// Loads the variant and checks the base still loads exactly as before.
fn load_variant_keeping_base(dir: &Path) -> (Problem, Problem) {
    let base = load_scenario(&example()).unwrap().problem;
    let v = load_scenario(dir).unwrap();
    assert_eq!(load_scenario(&example()).unwrap().problem, base, "the base is untouched");
    assert_ne!(v.problem, base, "the perturbation changed something");
    (base, v.problem)
}

fn ix(names: &[String], name: &str) -> u32 {
    names.iter().position(|n| n == name).unwrap() as u32
}

fn zone_ix(p: &Problem, name: &str) -> u32 {
    p.zones.iter().position(|z| z.id == name).unwrap() as u32
}

#[test]
fn demand_shock_scales_baseline_and_the_uptake_behind_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = variant(tmp.path(), "surge", &example(), "[[perturbation]]\nkind = \"demand_shock\"\nsku = \"SKU00000\"\nzone = \"Z001\"\nfactor = 2.0\n");
    let (base, v) = load_variant_keeping_base(&d);
    let (z, s) = (zone_ix(&base, "Z001"), ix(&base.skus, "SKU00000"));
    for (b, after) in base.baseline.iter().zip(&v.baseline) {
        let want = if b.zone == z && b.sku == s { 2.0 * b.units } else { b.units };
        assert_eq!(after.units, want, "{b:?}");
    }
    let mut changed = 0;
    for (u, after) in base.uptake.iter().zip(&v.uptake) {
        let hit = base.customers.zone[u.customer as usize] == z && base.offers[u.offer as usize].items.iter().any(|i| i.sku == s);
        let want = if hit { (u.p * 2.0).min(1.0) } else { u.p };
        assert!((after.p - want).abs() < 1e-12, "{u:?}");
        changed += usize::from(hit);
    }
    assert!(changed > 0);
}

#[test]
fn warehouse_outage_closes_its_share_of_the_horizon() {
    let tmp = tempfile::tempdir().unwrap();
    // 7 of the 14 horizon days closed.
    let d = variant(tmp.path(), "outage", &example(), "[[perturbation]]\nkind = \"warehouse_outage\"\nwarehouse = \"W00\"\nfrom = \"2026-11-20\"\nto = \"2026-12-07\"\n");
    let (base, v) = load_variant_keeping_base(&d);
    let w = ix(&base.warehouses, "W00");
    for (s, after) in base.stock.iter().zip(&v.stock) {
        let factor = if s.warehouse == w { 0.5 } else { 1.0 };
        assert_eq!((after.on_hand, after.inbound_units()), (s.on_hand * factor, s.inbound_units() * factor));
    }
    for (l, after) in base.lanes.iter().zip(&v.lanes) {
        let want = if l.warehouse == w { l.capacity.map(|c| c * 0.5) } else { l.capacity };
        assert_eq!(after.capacity, want);
    }
    // Closed the whole horizon: nothing ships from it.
    let d = variant(tmp.path(), "closed", &example(), "[[perturbation]]\nkind = \"warehouse_outage\"\nwarehouse = \"W00\"\n");
    let v = load_scenario(&d).unwrap().problem;
    assert!(v.stock.iter().filter(|s| s.warehouse == w).all(|s| s.on_hand == 0.0 && s.inbound_units() == 0.0));
    assert!(v.lanes.iter().filter(|l| l.warehouse == w).all(|l| l.capacity == Some(0.0)));
}

#[test]
fn lane_capacity_sets_or_scales_matching_lanes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = variant(tmp.path(), "lanes", &example(), "[[perturbation]]\nkind = \"lane_capacity\"\nzone = \"Z000\"\ncapacity = 10\n");
    let (base, v) = load_variant_keeping_base(&d);
    let z = zone_ix(&base, "Z000");
    for (l, after) in base.lanes.iter().zip(&v.lanes) {
        assert_eq!(after.capacity, if l.zone == z { Some(10.0) } else { l.capacity });
    }
}

#[test]
fn inbound_delay_pushes_arrivals_past_the_horizon() {
    let tmp = tempfile::tempdir().unwrap();
    // W01's inbound (4 units of SKU00003 on 2026-12-04) lands after the horizon.
    let d = variant(tmp.path(), "late", &example(), "[[perturbation]]\nkind = \"inbound_delay\"\nwarehouse = \"W01\"\ndays = 30\n");
    let (base, v) = load_variant_keeping_base(&d);
    let w = ix(&base.warehouses, "W01");
    let sku = ix(&base.skus, "SKU00003");
    let point = |p: &Problem| p.stock.iter().find(|s| s.warehouse == w && s.sku == sku).unwrap().inbound_units();
    assert_eq!((point(&base), point(&v)), (4.0, 0.0));
    for (s, after) in base.stock.iter().zip(&v.stock).filter(|(s, _)| s.warehouse != w) {
        assert_eq!(s.inbound, after.inbound);
    }
}

#[test]
fn receipt_adds_units_on_its_day() {
    let tmp = tempfile::tempdir().unwrap();
    let d = variant(tmp.path(), "receipt", &example(), "[[perturbation]]\nkind = \"receipt\"\nwarehouse = \"W01\"\nsku = \"SKU00003\"\nunits = 6\ndate = \"2026-12-05\"\n");
    let (base, v) = load_variant_keeping_base(&d);
    let (w, sku) = (ix(&base.warehouses, "W01"), ix(&base.skus, "SKU00003"));
    let point = |p: &Problem| p.stock.iter().find(|s| s.warehouse == w && s.sku == sku).unwrap().clone();
    let (before, after) = (point(&base), point(&v));
    assert_eq!(after.inbound_units(), before.inbound_units() + 6.0);
    assert_eq!(after.inbound.last().map(|r| r.day.to_string()), Some("2026-12-05".to_string()));
    for (s, after) in base.stock.iter().zip(&v.stock).filter(|(s, _)| s.warehouse != w || s.sku != sku) {
        assert_eq!(s, after);
    }
    // A warehouse without a stock row for the SKU is an error saying so.
    let bad = variant(tmp.path(), "nowhere", &example(), "[[perturbation]]\nkind = \"receipt\"\nwarehouse = \"W01\"\nsku = \"NOPE\"\nunits = 1\n");
    let e = load_scenario(&bad).unwrap_err().to_string();
    assert!(e.contains("line") && e.contains("NOPE"), "{e}");
    // A receipt outside the horizon would change nothing: an error naming the horizon.
    let late = variant(tmp.path(), "late", &example(), "[[perturbation]]\nkind = \"receipt\"\nwarehouse = \"W01\"\nsku = \"SKU00003\"\nunits = 6\ndate = \"2030-01-01\"\n");
    let e = load_scenario(&late).unwrap_err().to_string();
    assert!(e.contains("2030-01-01") && e.contains("expected a day of the horizon"), "{e}");
}

/// A table beside a variant's scenario.toml would be ignored (the variant
/// reads its base's): an error, since a `customers.csv` there withdrawing
/// consent was planned with the base's consent.
#[test]
fn a_table_beside_a_variant_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = variant(tmp.path(), "own_customers", &example(), "[[perturbation]]\nkind = \"demand_shock\"\nfactor = 1.1\n");
    load_scenario(&d).expect("the variant alone loads");
    std::fs::write(d.join("customers.csv"), "customer_id,zone,tier,consent\nC0000000,Z000,standard,false\n").unwrap();
    let e = load_scenario(&d).unwrap_err().to_string();
    assert!(e.contains("customers.csv") && e.contains("reads its tables from its base"), "{e}");
    // Misnamed there too: still a table the variant would ignore.
    std::fs::rename(d.join("customers.csv"), d.join("Customer.CSV")).unwrap();
    let e = load_scenario(&d).unwrap_err().to_string();
    assert!(e.contains("Customer.CSV") && e.contains("reads its tables from its base"), "{e}");
}

#[test]
fn uptake_shift_and_policy_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let d = variant(
        tmp.path(),
        "promo",
        &example(),
        "[[perturbation]]\nkind = \"uptake_shift\"\noffer = \"O00001\"\ntier = \"standard\"\nfactor = 1.5\n\n\
         [[perturbation]]\nkind = \"policy\"\nbudget = 100\ncontact_cap = 2\ntier_weights = { gold = 2.0 }\n",
    );
    let (base, v) = load_variant_keeping_base(&d);
    let (o, t) = (base.offers.iter().position(|x| x.id == "O00001").unwrap() as u32, base.tiers.iter().position(|x| x.name == "standard").unwrap() as u32);
    for (u, after) in base.uptake.iter().zip(&v.uptake) {
        let hit = u.offer == o && base.customers.tier[u.customer as usize] == t;
        assert!((after.p - if hit { (u.p * 1.5).min(1.0) } else { u.p }).abs() < 1e-12);
    }
    assert_eq!((v.policy.budget, v.policy.contact_cap), (Some(100.0), Some(2)));
    assert_eq!(v.tiers.iter().find(|t| t.name == "gold").unwrap().weight, 2.0);
    assert_eq!(v.policy.promise_days, base.policy.promise_days, "what is not overridden stays");
}

#[test]
fn a_variant_of_a_variant_composes() {
    let tmp = tempfile::tempdir().unwrap();
    let shift = "[[perturbation]]\nkind = \"uptake_shift\"\noffer = \"O00001\"\nfactor = 0.5\n";
    let a = variant(tmp.path(), "a", &example(), shift);
    let b = variant(tmp.path(), "b", &a, &format!("{shift}\n[[perturbation]]\nkind = \"policy\"\nbudget = 50\n"));
    let base = load_scenario(&example()).unwrap();
    let loaded = load_scenario(&b).unwrap();
    assert_eq!(loaded.lineage.len(), 2, "{:?}", loaded.lineage);
    let o = base.problem.offers.iter().position(|x| x.id == "O00001").unwrap() as u32;
    for (u, after) in base.problem.uptake.iter().zip(&loaded.problem.uptake) {
        let want = if u.offer == o { u.p * 0.25 } else { u.p };
        assert!((after.p - want).abs() < 1e-12);
    }
    assert_eq!(loaded.problem.policy.budget, Some(50.0));
    assert_ne!(loaded.content_hash, base.content_hash, "a variant has its own identity");
    assert_ne!(loaded.content_hash, load_scenario(&a).unwrap().content_hash);
}

#[test]
fn bad_variants_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("typo", "[[perturbation]]\nkind = \"uptake_shift\"\nfacto = 2.0\n", "facto"),
        ("kind", "[[perturbation]]\nkind = \"earthquake\"\n", "earthquake"),
        ("nomatch", "\n[[perturbation]]\nkind = \"lane_capacity\"\nzone = \"Z999\"\nfactor = 2.0\n", "line 4"),
        ("nomatch2", "[[perturbation]]\nkind = \"inbound_delay\"\nsku = \"SKU00000\"\ndays = 3\n", "matches no inbound row"),
        ("both", "[[perturbation]]\nkind = \"lane_capacity\"\nfactor = 2.0\ncapacity = 3.0\n", "exactly one"),
        ("toplevel", "budget = 3\n", "budget"),
        // Each number within 1e12, their product beyond it (line 3's factor
        // times the example's baseline demand; line 9's second receipt on top of the first).
        ("product", "[[perturbation]]\nkind = \"demand_shock\"\nfactor = 1e12\n", "line 3: after this perturbation the baseline demand of"),
        ("receipts", "[[perturbation]]\nkind = \"receipt\"\nwarehouse = \"W00\"\nsku = \"SKU00000\"\nunits = 7e11\n\n[[perturbation]]\nkind = \"receipt\"\nwarehouse = \"W00\"\nsku = \"SKU00000\"\nunits = 7e11\n", "line 9: after this perturbation the stock of W00/SKU00000 with its receipts is 1.4"),
    ];
    for (name, body, expect) in cases {
        let d = variant(tmp.path(), name, &example(), body);
        let err = load_scenario(&d).unwrap_err().to_string();
        assert!(err.contains(&d.join("scenario.toml").display().to_string()) && err.contains(expect), "{name}: {err}");
        assert!(err.contains("line"), "{name}: {err}");
    }
    let d = variant(tmp.path(), "nobase", &tmp.path().join("missing"), "");
    assert!(load_scenario(&d).unwrap_err().to_string().contains("not a scenario directory"));
}

/// Copies the example into `dir` (files only).
fn copy_example(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for e in fs::read_dir(example()).unwrap().flatten() {
        fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
}

/// With a root set (as `POST /v1/plans` sets it), every file the load reads
/// must resolve under it: a variant's base outside, and a table symlinked
/// from outside, are refused like missing files; the same scenarios inside
/// the root load.
#[test]
fn a_root_confines_every_file_a_load_reads() {
    use allot_scenarios::{load_scenario_with, LoadError, LoadOptions};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    copy_example(&root.join("retail"));
    let confined = || LoadOptions { root: Some(root.clone()), ..LoadOptions::default() };
    let refused = |dir: &Path| match load_scenario_with(dir, confined()) {
        Err(LoadError::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}"),
        other => panic!("{} was not refused: {:?}", dir.display(), other.map(|l| l.dir)),
    };
    assert!(load_scenario_with(&root.join("retail"), confined()).is_ok());
    // A variant inside whose base is inside: loads.
    let inside = variant(&root, "inside", Path::new("../retail"), "[[perturbation]]\nkind = \"uptake_shift\"\nfactor = 0.5\n");
    assert!(load_scenario_with(&inside, confined()).is_ok());
    // A base outside the root, directly or as the base of a base.
    let outside = variant(&root, "outside", &example(), "[[perturbation]]\nkind = \"uptake_shift\"\nfactor = 0.5\n");
    refused(&outside);
    assert!(load_scenario(&outside).is_ok(), "without a root the same variant loads");
    refused(&variant(&root, "of_outside", Path::new("../outside"), "[[perturbation]]\nkind = \"uptake_shift\"\nfactor = 0.9\n"));
    // A table symlinked from outside the root, and a scenario dir that is a symlink out.
    #[cfg(unix)]
    {
        let linked = root.join("linked");
        copy_example(&linked);
        fs::remove_file(linked.join("customers.csv")).unwrap();
        std::os::unix::fs::symlink(example().join("customers.csv"), linked.join("customers.csv")).unwrap();
        refused(&linked);
        std::os::unix::fs::symlink(example(), root.join("jump")).unwrap();
        refused(&root.join("jump"));
        // A symlink that stays inside the root is fine.
        std::os::unix::fs::symlink(root.join("retail"), root.join("alias")).unwrap();
        assert!(load_scenario_with(&root.join("alias"), confined()).is_ok());
    }
}

/// Model version 2's perturbations on the `rules` golden scenario: a rule's
/// bound and penalty, contact costs on a channel, and a channel outage, which
/// the plan then keeps (no email contact at all: every email offer's contact
/// date falls in the outage).
#[test]
fn rule_contact_cost_and_channel_outage() {
    let base_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/rules");
    let tmp = tempfile::tempdir().unwrap();
    let d = variant(
        tmp.path(),
        "marketing",
        &base_dir,
        "[[perturbation]]\nkind = \"rule\"\nrule = \"email_capacity\"\nfactor = 1.2\npenalty = 10\n\n\
         [[perturbation]]\nkind = \"contact_cost\"\nchannel = \"call\"\nfactor = 2\n\n\
         [[perturbation]]\nkind = \"channel_outage\"\nchannel = \"email\"\nfrom = \"2026-11-20\"\nto = \"2026-12-03\"\n",
    );
    let base = load_scenario(&base_dir).unwrap().problem;
    let v = load_scenario(&d).unwrap().problem;
    let rule = |p: &Problem, id: &str| p.rules.iter().find(|r| r.id == id).cloned().unwrap();
    assert!((rule(&v, "email_capacity").bound - 6.0).abs() < 1e-12);
    assert_eq!(rule(&v, "email_capacity").penalty, Some(10.0));
    assert_eq!(rule(&base, "email_capacity").penalty, None, "the base is untouched");
    let call = ix(&v.channels, "call");
    for (b, o) in base.offers.iter().zip(&v.offers) {
        let factor = if o.channel == call { 2.0 } else { 1.0 };
        assert!((o.cost_per_contact - factor * b.cost_per_contact).abs() < 1e-12, "{}", o.id);
    }
    let outage = rule(&v, "channel_outage:email");
    assert_eq!((outage.bound, outage.penalty), (0.0, None));
    let (_, _, plan) = allot_optimizer::plan(&v, &allot_optimizer::SolverChoice::Exact(Default::default())).unwrap();
    let email = plan.kpis.channels["email"].clone();
    assert!(email.contacts.abs() < 1e-9 && email.served_contacts == 0, "{email:?}");
    // Errors name what is wrong.
    for (bad, words) in [
        ("kind = \"rule\"\nrule = \"nope\"\nbound = 1\n", "rule \"nope\" is not in"),
        ("kind = \"channel_outage\"\nchannel = \"fax\"\n", "channel \"fax\""),
        ("kind = \"channel_outage\"\nchannel = \"email\"\nfrom = \"2026-12-05\"\nto = \"2026-12-06\"\n", "no offer of channel \"email\""),
        ("kind = \"contact_cost\"\nchannel = \"app\"\noffer = \"e1\"\nfactor = 2\n", "contact_cost matches no offer"),
    ] {
        let d = variant(tmp.path(), "bad", &base_dir, &format!("[[perturbation]]\n{bad}"));
        let e = load_scenario(&d).unwrap_err().to_string();
        assert!(e.contains(words) && e.contains("line "), "{e}");
    }
}

/// Contact policies' perturbations on the `contact_policies` golden scenario:
/// a `max_per_customer` rule's bound raised, one conflict removed and another
/// added; the plan follows (c1 may now take two promo contacts, and c3 both a
/// and b once `a_then_b` is gone).
#[test]
fn contact_policy_perturbations() {
    let base_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/contact_policies");
    let tmp = tempfile::tempdir().unwrap();
    let d = variant(
        tmp.path(),
        "relaxed",
        &base_dir,
        "[[perturbation]]\nkind = \"rule\"\nrule = \"promo_cap\"\nbound = 3\n\n\
         [[perturbation]]\nkind = \"conflict\"\nconflict = \"a_then_b\"\nremove = true\n\n\
         [[perturbation]]\nkind = \"conflict\"\nconflict = \"email_then_email\"\nwithin_days = 30\nchannels_a = \"email\"\noffers_b = \"c\"\n",
    );
    let base = load_scenario(&base_dir).unwrap().problem;
    let v = load_scenario(&d).unwrap().problem;
    assert_eq!(v.contact_rules[0].bound, 3.0);
    assert_eq!(base.contact_rules[0].bound, 2.0, "the base is untouched");
    let ids: Vec<&str> = v.conflicts.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a_then_c", "call_then_app", "email_then_email"]);
    let (_, alloc, plan) = allot_optimizer::plan(&v, &allot_optimizer::SolverChoice::Exact(Default::default())).unwrap();
    let served = |c: &str, o: &str| plan.rows(&v).any(|(u, r)| r.eligible() && v.customers.id[u.customer as usize] == c && v.offers[u.offer as usize].id == o);
    assert!(served("c3", "a") && served("c3", "b"), "a_then_b is gone");
    // c1: room 2 now; c is excluded by email_then_email (its email of 11-25 opened 30 days), so a + b + d.
    assert!(served("c1", "a") && served("c1", "b") && !served("c1", "c"));
    assert!(alloc.report.objective > 22.0 + 1e-6);
    for (bad, words) in [
        ("kind = \"rule\"\nrule = \"promo_cap\"\npenalty = 1\n", "always hard"),
        ("kind = \"conflict\"\nconflict = \"nope\"\nremove = true\n", "conflict \"nope\" is not in"),
        ("kind = \"conflict\"\nconflict = \"x\"\nwithin_days = 3\nchannels_a = \"fax\"\n", "channel \"fax\""),
        ("kind = \"conflict\"\nconflict = \"x\"\nchannels_a = \"email\"\n", "within_days"),
    ] {
        let d = variant(tmp.path(), "bad", &base_dir, &format!("[[perturbation]]\n{bad}"));
        let e = load_scenario(&d).unwrap_err().to_string();
        assert!(e.contains(words) && e.contains("line "), "{e}");
    }
}
