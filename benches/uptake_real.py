"""Helper of benches/uptake_real.sh: the Caravan data as allot's customer
attributes, and scikit-learn's L2 logistic regression on the features allot's
uptake model saw.

  prepare CARAVAN_CSV DIR   writes DIR/customer_features.csv and DIR/labels.csv
  compare DIR               fits scikit-learn on DIR/encoded.csv, prints both
"""
import csv
import json
import sys

# Nominal codes in the data dictionary (customer subtype, customer main type):
# written as levels (`L33`) so that allot reads them as categorical. Every other
# column is an ordinal band or a count and stays numeric.
CATEGORICAL = {"MOSTYPE", "MOSHOOFD"}
# ISLR's split (chapter 4 lab): the first 1000 customers are the test set.
TEST_ROWS = 1000


def prepare(src, out):
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    attributes = [c for c in rows[0] if c != "Purchase"]
    with open(f"{out}/customer_features.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id"] + attributes)
        for i, r in enumerate(rows):
            w.writerow([f"C{i:05d}"] + [f"L{r[c]}" if c in CATEGORICAL else r[c] for c in attributes])
    with open(f"{out}/labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "response", "split"])
        for i, r in enumerate(rows):
            w.writerow([f"C{i:05d}", 1 if r["Purchase"] == "Yes" else 0, "test" if i < TEST_ROWS else "train"])
    buyers = sum(r["Purchase"] == "Yes" for r in rows)
    print(f"Caravan: {len(rows)} customers, {len(attributes)} attributes ({', '.join(sorted(CATEGORICAL))} categorical), "
          f"{buyers} buyers ({buyers / len(rows):.1%}); test = first {TEST_ROWS} customers (ISLR's split)")


def compare(out):
    import numpy as np
    import sklearn
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    with open(f"{out}/encoded.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    x = np.array([[float(v) for v in r[:-2]] for r in rows])
    y = np.array([int(float(r[-2])) for r in rows])
    train = np.array([r[-1] == "train" for r in rows])
    allot = json.load(open(f"{out}/allot.json"))
    n = int(train.sum())
    levels = sum("=" in h for h in header[:-2])
    print(f"scikit-learn fits the identical features: {x.shape[1]} columns ({levels} of them one-hot levels)")
    print(f"{'model':<52} {'AUC':>7} {'log-loss':>9} {'L2 per row':>11}")
    print(f"{'allot uptake model (IRLS, 5-fold CV on log-loss)':<52} {allot['auc']:>7.4f} {allot['log_loss']:>9.4f} {allot['l2']:>11.1e}")
    results = {}
    for scoring in ["neg_log_loss", "roc_auc"]:
        # C = 1 / (l2 * n): sklearn penalises the summed log-loss, allot the mean.
        # l1_ratios=(0,): pure L2 (scikit-learn 1.9 asks for it to be explicit).
        m = LogisticRegressionCV(Cs=np.logspace(-4, 4, 33), l1_ratios=(0.0,), cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring=scoring, max_iter=20000, use_legacy_attributes=False)
        m.fit(x[train], y[train])
        p = m.predict_proba(x[~train])[:, 1]
        auc, ll = roc_auc_score(y[~train], p), log_loss(y[~train], p)
        results[scoring] = auc
        label = f"scikit-learn {sklearn.__version__} LogisticRegressionCV ({'log-loss' if scoring == 'neg_log_loss' else 'AUC'})"
        print(f"{label:<52} {auc:>7.4f} {ll:>9.4f} {1 / (float(np.ravel(m.C_)[0]) * n):>11.1e}")
    gap = allot["auc"] - results["neg_log_loss"]
    verdict = "within 0.005 or above: yes" if gap >= -0.005 else "within 0.005 or above: NO"
    print(f"allot - scikit-learn (same CV criterion, log-loss): AUC {gap:+.4f}; {verdict}")
    return 0 if gap >= -0.005 else 1


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(compare(sys.argv[2]))
