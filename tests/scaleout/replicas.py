"""Replica tests: two `allot serve --database` replicas on one PostgreSQL.

Run by tests/scaleout/testbed.sh, which starts PostgreSQL and plans two
versions into a shared store (the first active). Each test prints what it
measured; any failed check exits non-zero.

  1. consent withdrawn on replica A is in force on replica B as soon as A
     acknowledges it (no wait);
  2. an inventory event on A shows in B's live stock within a bounded delay;
  3. the same event id sent to A then B is applied once;
  4. activation on A switches B; rollback on B switches A; a second
     rollback finds nothing before the first plan (the store's rule);
  5. the audit holds the decisions of both replicas;
  6. replica A killed (SIGKILL) in the middle of a load of events loses no
     acknowledged event, and restarted, it agrees with B;
  7. PostgreSQL stopped: each replica answers the fallback with no offers
     (`live_state_stale`) and /readyz 503 within the bound (3 s, the default
     --max-live-silence-secs) and a poll;
  8. PostgreSQL started again: both replicas reconnect and serve the plan,
     and a consent withdrawal on one is in force on the other;
  9. (run before 7) a canary started on A puts every customer in the same
     arm on B; its share raised on B reaches A, moving customers only into
     the canary; stopped on A, B follows;
 11. (run after 0) compaction on A keeps a withdrawal that B, live but
     paused, has not applied yet; resumed, B applies it. Then B paused past
     the liveness bound: A compacts the withdrawal; resumed, B folds it from
     the consent snapshot.
 10. (run after 1) the customer withdrawn on A, erased on B: the withdrawal
     is kept (folded from the database's rows: PostgreSQL's JSON, not
     SQLite's) and in force on both replicas and in the database.
  12. (run after 0) a second store moves in while A and B serve: its
     compacted withdrawal, imported by a third replica starting on it, is in
     force on A and B without a restart.
  0. (run first) the store moves to PostgreSQL with what its own compaction
     folded: a consent withdrawn while the store served alone (SQLite), 40
     days old and compacted into its snapshot at a restart, is in force on
     both replicas after the import, and the store's compaction point is the
     database's.
"""

import argparse
import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

ADMIN = "admin-key-for-the-scale-out-test-bed"


def request(base, method, path, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("x-api-key", ADMIN)
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


class Replica:
    def __init__(self, args, name, port, live=None, store=None, ready="/readyz"):
        self.args, self.name, self.port = args, name, port
        self.store = store or args.store
        # A store with no active plan is never ready: then alive is enough.
        self.ready = ready
        self.base = f"http://127.0.0.1:{port}"
        self.proc = None
        # Where the live state is: PostgreSQL, else the store's own live.db with these flags.
        self.live = ["--database", args.database] if live is None else live

    def start(self):
        log = open(os.path.join(self.args.work, f"replica-{self.name}.log"), "ab")
        self.proc = subprocess.Popen(
            [self.args.allot, "serve", "--store", self.store, "--addr", f"127.0.0.1:{self.port}",
             "--keys", self.args.keys, "--threads", "2", *self.live],
            stdout=log, stderr=log,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            check(self.proc.poll() is None, f"replica {self.name} exited on start (see replica-{self.name}.log)")
            try:
                if request(self.base, "GET", self.ready, timeout=1)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        check(False, f"replica {self.name} not ready within 60 s")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def offers(replica, customer):
    status, body = request(replica.base, "GET", f"/v1/customers/{customer}/offers")
    check(status == 200, f"offers of {customer} on {replica.name}: {status} {body}")
    return body


def live_stock(replica, warehouse, sku):
    status, body = request(replica.base, "GET", f"/v1/warehouses/{warehouse}/pick-priorities")
    check(status == 200, f"pick priorities on {replica.name}: {status} {body}")
    for item in body["priorities"]:
        if item["sku"] == sku:
            return item["live_stock"]
    check(False, f"{sku} not in the pick priorities of {warehouse}")


def psql(args, sql):
    out = subprocess.run(["psql", args.database, "-Atc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    for a in ("--allot", "--store", "--keys", "--database", "--scenario", "--work", "--second-plan"):
        parser.add_argument(a, required=True)
    parser.add_argument("--ports", type=int, nargs=2, required=True)
    parser.add_argument("--pg-ctl", required=True, help="pg_ctl of the cluster, to stop it (test 7)")
    parser.add_argument("--pg-data", required=True, help="the cluster's data directory")
    args = parser.parse_args()

    with open(os.path.join(args.scenario, "customers.csv")) as f:
        customers = [row["customer_id"] for row in csv.DictReader(f)]
    # A second store of the same versions, to move in while A and B run (test 12).
    store2 = os.path.join(args.work, "svc-store-2")
    shutil.copytree(args.store, store2, ignore=shutil.ignore_patterns("live.db*"))
    moved = compact_alone(args, args.store, reversed(customers[:500]), COMPACTED_BEFORE)
    a = Replica(args, "A", args.ports[0]).start()
    b = Replica(args, "B", args.ports[1]).start()
    try:
        for replica in (a, b):
            check(offers(replica, moved)["offers"] == [], f"{replica.name} offers {moved}: the store's compacted withdrawal was not imported")
        upto = psql(args, "SELECT upto FROM allot_inventory_compacted")
        check(upto == COMPACTED_BEFORE, f"the database's compaction point {upto!r}, not the store's {COMPACTED_BEFORE}")
        print(f"0. the store's compacted withdrawal of {moved} is in force on A and B, its compaction point in the database")
        second_store_moves_in(args, a, b, store2, customers)
        run(args, a, b)
    finally:
        a.stop()
        b.stop()


# The compaction point test 0 gives the store (before any plan of it, so no
# version is refused).
COMPACTED_BEFORE = "2000-01-01T00:00:00+00:00"


def second_store_moves_in(args, a, b, store2, customers):
    """12. A second store moves into the database while A and B serve: its
    own live.db (no activations; a withdrawal compacted into its snapshot)
    is imported by the replica C that starts on it, and A and B, running,
    fold the withdrawal (imported as an event) without a restart."""
    port = args.ports[1] + 1
    # One A offers something to (the second store serves the fallback: it has no active plan).
    moved = compact_alone(args, store2, (c for c in customers[1200:1800] if offers(a, c)["offers"]), None, port)
    c = Replica(args, "C", port, store=store2, ready="/healthz").start()
    try:
        started = time.time()
        while time.time() - started < 5 and any(offers(r, moved)["offers"] for r in (a, b)):
            time.sleep(0.05)
        for replica in (a, b, c):
            check(offers(replica, moved)["offers"] == [], f"{replica.name} offers {moved}: the second store's withdrawal is not in force")
        imports = psql(args, "SELECT count(*) FROM allot_imports WHERE file LIKE 'live.db %'")
        check(imports == "2", f"{imports} live.db imports recorded, not 2")
    finally:
        c.stop()
        # Its row, live for a few seconds more, would hold up the next withdrawal.
        psql(args, f"DELETE FROM allot_replicas WHERE name LIKE '127.0.0.1:{port}/%'")
    print(f"12. a second store moved in while A and B served: its compacted withdrawal of {moved} in force on A and B after {time.time() - started:.2f} s")


def compact_alone(args, store, candidates, compacted_before, port=None):
    """Test 0's first half (and test 12's): `store` serving alone on its
    live.db withdraws the consent of the first of `candidates` it makes
    offers to; the event is then made 40 days old (time passing, written
    into live.db), so the next start compacts it into the consent snapshot
    (the default event window: 30 days); `compacted_before`, when given, is
    written as its compaction point. Returns the customer."""
    alone = Replica(args, "alone", port or args.ports[0], live=[], store=store, ready="/healthz").start()
    try:
        moved = next((c for c in candidates if offers(alone, c)["offers"]), None)
        check(moved is not None, "no customer with offers among the candidates (alone)")
        status, body = request(alone.base, "POST", "/v1/events/consent", {"event_id": "tb-alone-1", "customer_id": moved, "consent": False})
        check(status == 202, f"consent event (alone): {status} {body}")
        alone.stop()
        old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 40 * 86400))
        live = sqlite3.connect(os.path.join(store, "live.db"))
        with live:
            live.execute("UPDATE allot_events SET body = json_set(body, '$.received_at', ?) WHERE kind = 'consent'", (old,))
        live.close()
        alone.start()
        check(offers(alone, moved)["offers"] == [], f"{moved} offered after the restart (alone)")
    finally:
        alone.stop()
    live = sqlite3.connect(os.path.join(store, "live.db"))
    with live:
        left = live.execute("SELECT count(*) FROM allot_events WHERE kind = 'consent'").fetchone()[0]
        snapshot = live.execute("SELECT override FROM allot_consent_snapshot WHERE customer_id = ?", (moved,)).fetchone()
        check(left == 0 and snapshot is not None, f"the withdrawal was not compacted ({left} consent events left, snapshot {snapshot})")
        if compacted_before:
            live.execute("INSERT INTO allot_inventory_compacted (id, upto) VALUES (1, ?)", (compacted_before,))
    live.close()
    return moved


def run(args, a, b):
    with open(os.path.join(args.scenario, "customers.csv")) as f:
        customers = [row["customer_id"] for row in csv.DictReader(f)]
    lagging_replica_keeps_its_events(args, a, b, customers)
    served = next((c for c in customers[:500] if offers(a, c)["offers"]), None)
    check(served is not None, "no customer with offers among the first 500")

    # 1. consent withdrawal: in force on B when A acknowledges.
    before = offers(b, served)
    check(before["offers"], f"{served} has offers on B before the withdrawal")
    status, body = request(a.base, "POST", "/v1/events/consent", {"event_id": "tb-consent-1", "customer_id": served, "consent": False})
    check(status == 202, f"consent event: {status} {body}")
    check(body.get("replicas_pending") == [], f"a replica had not applied the withdrawal: {body}")
    after = offers(b, served)
    check(after["offers"] == [], f"B still offers {served} after A acknowledged the withdrawal: {after['offers']}")
    print(f"1. consent withdrawn on A is in force on B at acknowledgement ({len(before['offers'])} offers -> 0)")

    # 10. erasure on B keeps A's withdrawal.
    status, body = request(b.base, "DELETE", f"/v1/customers/{served}/personal-data")
    check(status == 200 and body.get("objection_kept") is True, f"erasure of {served} on B: {status} {body}")
    for replica in (a, b):
        check(offers(replica, served)["offers"] == [], f"{replica.name} offers {served} after the erasure kept the withdrawal")
    kept = psql(args, f"SELECT override FROM allot_consent_snapshot WHERE customer_id = '{served}'")
    check(json.loads(kept or "null") == {"consent": False, "suppressed": None}, f"the kept objection in the database: {kept!r}")
    # A restart folds the objection from the database alone (A kept it in memory).
    a.kill()
    a.start()
    check(offers(a, served)["offers"] == [], f"A offers {served} after a restart: the kept objection was not read back")
    print(f"10. erased on B, the withdrawal made on A stays in force ({body['consent_events']} consent rows erased, objection kept)")

    # 2. inventory on A, visible on B within a bounded delay.
    with open(os.path.join(args.scenario, "inventory.csv")) as f:
        warehouses = sorted({row["warehouse_id"] for row in csv.DictReader(f)})
    warehouse_items = None
    for w in warehouses:
        st, pp = request(b.base, "GET", f"/v1/warehouses/{w}/pick-priorities")
        if st == 200 and pp["priorities"]:
            warehouse_items = (w, pp["priorities"][0]["sku"])
            break
    check(warehouse_items is not None, "no warehouse with pick priorities")
    warehouse, sku = warehouse_items
    stock0 = live_stock(b, warehouse, sku)
    sent = time.time()
    status, body = request(a.base, "POST", "/v1/events/inventory", {"event_id": "tb-receipt-1", "kind": "receipt", "warehouse_id": warehouse, "sku": sku, "qty": 1000000})
    check(status == 202, f"inventory event: {status} {body}")
    delay = None
    while time.time() - sent < 5:
        if live_stock(b, warehouse, sku) >= stock0 + 1000000 - 1e-6:
            delay = time.time() - sent
            break
        time.sleep(0.005)
    check(delay is not None and delay < 1.0, f"B did not see the receipt within 1 s (delay {delay})")
    print(f"2. inventory event on A visible on B after {delay * 1000:.0f} ms (bound: 500 ms poll, notified sooner)")

    # 3. idempotency across replicas.
    event = {"event_id": "tb-receipt-2", "kind": "receipt", "warehouse_id": warehouse, "sku": sku, "qty": 7}
    s1, _ = request(a.base, "POST", "/v1/events/inventory", event)
    s2, body2 = request(b.base, "POST", "/v1/events/inventory", event)
    check((s1, s2) == (202, 200) and body2["duplicate"], f"the same event id on A then B: {s1} then {s2} {body2}")
    check(psql(args, "SELECT count(*) FROM allot_events WHERE event_id = 'tb-receipt-2'") == "1", "event stored twice")
    print("3. one event id sent to both replicas is applied once")

    # 4. activation and rollback switch every replica.
    status, body = request(a.base, "POST", f"/v1/plans/{args.second_plan}/activate")
    check(status == 200, f"activate on A: {status} {body}")
    switched = None
    started = time.time()
    while time.time() - started < 5:
        if request(b.base, "GET", "/v1/plans")[1]["serving"] == args.second_plan:
            switched = time.time() - started
            break
        time.sleep(0.01)
    check(switched is not None, "B did not switch to the plan activated on A")
    status, body = request(b.base, "POST", "/v1/plans/rollback")
    check(status == 200, f"rollback on B: {status} {body}")
    started = time.time()
    while time.time() - started < 5 and request(a.base, "GET", "/v1/plans")[1]["serving"] == args.second_plan:
        time.sleep(0.01)
    check(request(a.base, "GET", "/v1/plans")[1]["serving"] != args.second_plan, "A did not follow the rollback on B")
    # The history replays as a stack, as in the store: nothing before the first plan.
    status, body = request(a.base, "POST", "/v1/plans/rollback")
    check(status == 409 and body["error"]["code"] == "nothing_to_roll_back", f"a second rollback: {status} {body}")
    print(f"4. activation on A served by B after {switched * 1000:.0f} ms; rollback on B followed by A")

    # 5. the audit holds both replicas' decisions.
    offers(a, customers[1])
    offers(b, customers[1])
    time.sleep(0.3)
    status, body = request(b.base, "GET", f"/v1/customers/{customers[1]}/decisions")
    check(status == 200 and len(body["decisions"]) >= 2, f"audit of {customers[1]}: {status} {body}")
    print(f"5. the shared audit holds {len(body['decisions'])} decisions of {customers[1]} from both replicas")

    # 6. SIGKILL mid-load: no acknowledged event lost.
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def load(worker):
        i = 0
        while not stop.is_set():
            i += 1
            eid = f"tb-load-{worker}-{i}"
            try:
                st, _ = request(a.base, "POST", "/v1/events/inventory",
                                {"event_id": eid, "kind": "order", "warehouse_id": warehouse, "sku": sku, "qty": 1}, timeout=5)
            except OSError:
                return
            if st == 202:
                with lock:
                    acked.append(eid)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    a.kill()
    stop.set()
    for t in threads:
        t.join()
    check(len(acked) > 0, "no event was acknowledged before the kill")
    ids = ",".join(f"'{e}'" for e in acked)
    stored = int(psql(args, f"SELECT count(*) FROM allot_events WHERE event_id IN ({ids})"))
    check(stored == len(acked), f"{len(acked) - stored} acknowledged events lost")
    total_orders = int(psql(args, "SELECT count(*) FROM allot_events WHERE event_id LIKE 'tb-load-%'"))
    time.sleep(0.8)
    stock_b = live_stock(b, warehouse, sku)
    a.start()
    stock_a = live_stock(a, warehouse, sku)
    check(abs(stock_a - stock_b) < 1e-6, f"after restart A sees stock {stock_a}, B {stock_b}")
    print(f"6. killed A mid-load: {len(acked)} acknowledged events, all stored ({total_orders} committed in all); restarted A agrees with B (stock {stock_a})")

    experiments_agree(args, a, b, customers)
    customer = stale_fallback(args, a, b, customers)
    database_back(args, a, b, customer)


def age_every_event_and_restart(args, a):
    """Makes every event 40 days old (past the event window: time passing,
    written into the database), then restarts A, which compacts at its start."""
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 40 * 86400))
    psql(args, f"UPDATE allot_events SET body = jsonb_set(body, '{{received_at}}', to_jsonb('{old}'::text))")
    a.kill()
    a.start()


def forget_earlier_rows(args, replica):
    """Drops the heartbeat rows of the replica's earlier processes: live for
    a few seconds after a kill, they would hold up the next withdrawal."""
    psql(args, f"DELETE FROM allot_replicas WHERE name LIKE '127.0.0.1:{replica.port}/%' AND name <> '127.0.0.1:{replica.port}/{replica.proc.pid}'")


def once_back_on_the_plan(replica, customer):
    """The customer's answer once the replica, resumed, serves the plan again
    (it is stale first: no offers to anyone), at most 10 s on."""
    started = time.time()
    while time.time() - started < 10 and offers(replica, customer)["fallback"]:
        time.sleep(0.05)
    answer = offers(replica, customer)
    check(not answer["fallback"], f"{replica.name} not back on the plan 10 s after resuming: {answer}")
    return answer


def lagging_replica_keeps_its_events(args, a, b, customers):
    """11. Compaction never deletes an event a live replica has yet to
    apply: B paused (SIGSTOP) but live (its heartbeat held fresh in the
    database), a withdrawal made on A, every event aged past the event
    window, then A compacts (at its restart). The withdrawal stays; resumed,
    B applies it."""
    customer = next((c for c in customers[600:1200] if offers(b, c)["offers"]), None)
    check(customer is not None, "no customer with offers among customers 600-1200")
    b.proc.send_signal(signal.SIGSTOP)
    try:
        # B's row: the replica name is its address and process id.
        b_row = f"name = '127.0.0.1:{b.port}/{b.proc.pid}'"
        check(psql(args, f"UPDATE allot_replicas SET heartbeat_at = now() + interval '1 hour' WHERE {b_row}") == "UPDATE 1", "B's heartbeat row")
        status, body = request(a.base, "POST", "/v1/events/consent", {"event_id": "tb-lag-1", "customer_id": customer, "consent": False})
        check(status == 202 and body.get("replicas_pending"), f"withdrawal on A with B paused: {status} {body}")
        age_every_event_and_restart(args, a)
        left = psql(args, "SELECT count(*) FROM allot_events WHERE event_id = 'tb-lag-1'")
        check(left == "1", "A compacted a withdrawal B had not applied")
        check(offers(a, customer)["offers"] == [], f"A offers {customer} after its restart")
    finally:
        b.proc.send_signal(signal.SIGCONT)
        psql(args, f"UPDATE allot_replicas SET heartbeat_at = now() WHERE {b_row}")
        forget_earlier_rows(args, a)
    started = time.time()
    answer = once_back_on_the_plan(b, customer)
    check(answer["offers"] == [], f"B offers {customer} after catching up: the withdrawal was compacted away ({answer['offers']})")
    print(f"11. a withdrawal B (paused, live) had not applied stays through A's compaction; B back on the plan after {time.time() - started:.2f} s offers nothing")

    # 11b. B paused long enough to drop out of the bound: A's compaction
    # folds the withdrawal B never saw into the snapshot; resumed, B folds
    # the snapshot's newer row when it catches up.
    second = next((c for c in customers[1800:2400] if offers(b, c)["offers"]), None)
    check(second is not None, "no customer with offers among customers 1800-2400")
    b.proc.send_signal(signal.SIGSTOP)
    try:
        status, body = request(a.base, "POST", "/v1/events/consent", {"event_id": "tb-lag-2", "customer_id": second, "consent": False})
        check(status == 202, f"withdrawal on A with B paused: {status} {body}")
        time.sleep(3.5)
        age_every_event_and_restart(args, a)
        left = psql(args, "SELECT count(*) FROM allot_events WHERE event_id = 'tb-lag-2'")
        check(left == "0", "A did not compact the withdrawal with B out of the bound: the test would prove nothing")
    finally:
        b.proc.send_signal(signal.SIGCONT)
        forget_earlier_rows(args, a)
    answer = once_back_on_the_plan(b, second)
    check(answer["offers"] == [], f"B offers {second}: the withdrawal compacted while it was silent was missed ({answer['offers']})")
    print(f"11b. a withdrawal compacted while B was silent reaches B from the snapshot; B offers {second} nothing")


def experiments_agree(args, a, b, customers):
    """9. A canary started on A is served alike by B: every customer in the same
    arm, served by the same version; a share raised on B reaches A and moves
    customers only into the canary; stopped on A, B stops."""
    sample = customers[:200]

    def arms(replica):
        out = {}
        for c in sample:
            d = offers(replica, c)
            arm = next((e["arm"] for e in d.get("experiments", []) if e["experiment_id"] == "tb-canary"), None)
            out[c] = (arm, d["plan_version"])
        return out

    def wait_for(replica, condition, what):
        started = time.time()
        while time.time() - started < 5:
            if condition(offers(replica, sample[0])):
                return time.time() - started
            time.sleep(0.01)
        check(False, f"{replica.name}: {what} within 5 s")

    status, body = request(a.base, "POST", "/v1/experiments", {"experiment_id": "tb-canary", "kind": "canary", "version": args.second_plan, "share": 0.3})
    check(status == 201, f"canary on A: {status} {body}")
    seen = wait_for(b, lambda d: any(e["experiment_id"] == "tb-canary" for e in d.get("experiments", [])), "the canary started on A")
    on_a, on_b = arms(a), arms(b)
    check(on_a == on_b, f"replicas disagree on arms: {[c for c in sample if on_a[c] != on_b[c]][:5]}")
    canary = [c for c, (arm, _) in on_a.items() if arm == "canary"]
    check(0 < len(canary) < len(sample), f"{len(canary)} of {len(sample)} in the canary")
    check(all(v == args.second_plan for c, (arm, v) in on_a.items() if arm == "canary"), "a canary customer not served the canary's version")
    status, body = request(b.base, "POST", "/v1/experiments/tb-canary/share", {"share": 0.6})
    check(status == 200, f"share on B: {status} {body}")
    time.sleep(0.8)
    raised = arms(a)
    check(all(raised[c][0] == "canary" for c in canary), "a customer left the canary when its share rose")
    more = sum(1 for arm, _ in raised.values() if arm == "canary")
    check(more > len(canary), f"share 0.6 on B: A still has {more} canary customers")
    status, body = request(a.base, "POST", "/v1/experiments/tb-canary/stop")
    check(status == 200, f"stop on A: {status} {body}")
    stopped = wait_for(b, lambda d: not d.get("experiments"), "the stop on A")
    print(f"9. canary on A served by B after {seen * 1000:.0f} ms, both replicas put {len(canary)} of {len(sample)} customers in it; "
          f"share 0.6 set on B: {more} on A, none left; stopped on A, B followed after {stopped * 1000:.0f} ms")


LIVE_SILENCE = 3.0  # the default --max-live-silence-secs
POLL = 0.5  # the replicas' sync poll


def stale_fallback(args, a, b, customers):
    """7. the database stopped: both replicas fail closed within the bound."""
    customer = next((c for c in customers[:500] if offers(b, c)["offers"]), None)
    check(customer is not None, "no customer with offers on B before the stop")
    check(not offers(a, customer)["fallback"], "A in the fallback before the stop")
    pg_ctl(args, "-m", "immediate", "stop")
    stopped = time.time()
    limit = LIVE_SILENCE + 2 * POLL + 1
    delays = {}
    for r in (a, b):
        while time.time() - stopped < limit:
            body = offers(r, customer)
            if body["fallback"] and body.get("fallback_reason") == "live_state_stale":
                check(body["offers"] == [], f"{r.name} stale but offers {body['offers']}")
                delays[r.name] = time.time() - stopped
                break
            time.sleep(0.05)
        check(r.name in delays, f"{r.name} still answers from the plan {limit} s after the database stopped")
        status, ready = request(r.base, "GET", "/readyz")
        check(status == 503 and ready["error"]["code"] == "live_state_stale", f"/readyz of {r.name} with the database down: {status} {ready}")
    print("7. database stopped: " + ", ".join(f"{n} in the fallback (no offers, /readyz 503) after {d * 1000:.0f} ms" for n, d in sorted(delays.items()))
          + f" (bound {LIVE_SILENCE:.0f} s, then a {POLL * 1000:.0f} ms poll)")
    return customer


def pg_ctl(args, *command):
    cmd = [args.pg_ctl, "-D", args.pg_data, *command]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, capture_output=True)


def database_back(args, a, b, customer):
    """8. the database started again: the replicas reconnect and serve the plan."""
    sock = os.path.join(os.path.dirname(args.pg_data), "sock")
    port = urlparse(args.database).port
    pg_ctl(args, "-l", os.path.join(sock, "server.log"), "-w", "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start")
    started = time.time()
    for r in (a, b):
        while time.time() - started < 10 and request(r.base, "GET", "/readyz")[0] != 200:
            time.sleep(0.05)
        body = offers(r, customer)
        check(not body["fallback"] and body["offers"], f"{r.name} not back on the plan 10 s after the database: {body}")
    back = time.time() - started
    status, body = request(a.base, "POST", "/v1/events/consent", {"event_id": "tb-consent-back", "customer_id": customer, "consent": False})
    check(status == 202 and body.get("replicas_pending") == [], f"consent event after the restart: {status} {body}")
    check(offers(b, customer)["offers"] == [], f"B still offers {customer} after A acknowledged the withdrawal")
    print(f"8. database started again: both replicas serve the plan after {back * 1000:.0f} ms; a withdrawal on A is in force on B")


if __name__ == "__main__":
    main()
