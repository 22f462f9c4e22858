//! Infeasibility explained. Every version-1 model is feasible (no offers, all
//! baseline unmet); only hard lower bounds (`min_total` rules) can ask for more
//! than the limits allow. When they do, the planner wants to know which rules
//! and which limits collide, not "infeasible". The exact solver asks HiGHS for
//! an irreducible infeasible subset (IIS: rows and bounds that cannot all hold,
//! while dropping any one of them leaves a system that can) and names each of
//! its rows here, in the scenario's words.

use std::fmt;

/// One row of the subset.
#[derive(Debug, Clone, PartialEq)]
pub struct Culprit {
    /// The rule or limit family (`rule`, `stock`, `redemptions`, `contact_cap`, ...).
    pub family: String,
    /// What and where, in the scenario's ids (`W01/SKU3`, a rule id, a customer id).
    pub key: String,
    /// The limit as the scenario states it (`at most 120`, `min_total of contacts >= 500`).
    pub limit: String,
}

/// Column bounds of the subset of one kind, counted rather than listed (a
/// rule over thousands of pairs brings each pair's `x <= 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct BoundGroup {
    /// The bound in words (`x <= 1: an offer is shown to a customer at most once`).
    pub what: String,
    /// How many columns of the subset have it.
    pub count: usize,
    /// A few of them, in the scenario's ids.
    pub examples: Vec<String>,
}

/// Why a model has no solution.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contradiction {
    /// The rows of the subset: hard rules first, then the limits they collide with.
    pub constraints: Vec<Culprit>,
    /// The column bounds of the subset, by kind.
    pub bounds: Vec<BoundGroup>,
    /// Whether dropping any one of them lets the rest hold (HiGHS proved it
    /// for an LP; a MIP's subset, or one cut short by the time limit, only
    /// cannot all hold).
    pub irreducible: bool,
    /// The model has all-or-nothing decisions (`binary_decisions`, the
    /// custom-offer limit): the subset holds with them and may hold
    /// fractionally. When HiGHS names no subset of such a model,
    /// `constraints` lists the hard lower-bound rules.
    pub integer_decisions: bool,
}

/// Rows listed in full; the rest are counted by family.
const LISTED: usize = 25;
/// Examples per bound group.
pub const EXAMPLES: usize = 3;

impl Contradiction {
    /// Orders the rows (hard rules first, then by family and key) and the bound groups.
    pub fn sorted(mut self) -> Self {
        self.constraints.sort_by(|a, b| (a.family != "rule", &a.family, &a.key).cmp(&(b.family != "rule", &b.family, &b.key)));
        self.bounds.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.what.cmp(&b.what)));
        self
    }
}

impl fmt::Display for Contradiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decisions = if self.integer_decisions { " with all-or-nothing decisions (binary_decisions or max_custom_offers)" } else { "" };
        if self.constraints.is_empty() && self.bounds.is_empty() {
            return write!(f, "the model is infeasible{decisions} (HiGHS named no subset)");
        } else if self.bounds.is_empty() && self.constraints.iter().all(|c| c.family == "rule") && self.integer_decisions {
            write!(f, "the hard rules cannot be met{decisions}; HiGHS named no subset, the hard lower bounds are:")?;
        } else {
            let minimal = if self.irreducible { ", and dropping any one of them lets the rest hold" } else { "" };
            write!(f, "the hard rules contradict the limits{decisions}: these {} constraints cannot all hold{minimal}:", self.constraints.len())?;
        }
        for c in self.constraints.iter().take(LISTED) {
            write!(f, "\n  - {} {}: {}", c.family, c.key, c.limit)?;
        }
        if self.constraints.len() > LISTED {
            let mut rest: Vec<(&str, usize)> = Vec::new();
            for c in &self.constraints[LISTED..] {
                match rest.iter_mut().find(|(name, _)| *name == c.family) {
                    Some((_, n)) => *n += 1,
                    None => rest.push((&c.family, 1)),
                }
            }
            let rest: Vec<String> = rest.iter().map(|(name, n)| format!("{n} {name}")).collect();
            write!(f, "\n  - and {} more: {}", self.constraints.len() - LISTED, rest.join(", "))?;
        }
        for b in &self.bounds {
            write!(f, "\n  - with {} on {} columns (e.g. {})", b.what, b.count, b.examples.join(", "))?;
        }
        Ok(())
    }
}

/// Groups column bounds by kind: `(what, example)` per column of the subset.
pub fn group_bounds(columns: impl IntoIterator<Item = (String, String)>) -> Vec<BoundGroup> {
    let mut groups: Vec<BoundGroup> = Vec::new();
    for (what, example) in columns {
        let at = match groups.iter().position(|g| g.what == what) {
            Some(at) => at,
            None => {
                groups.push(BoundGroup { what, count: 0, examples: Vec::new() });
                groups.len() - 1
            }
        };
        let group = &mut groups[at];
        group.count += 1;
        if group.examples.len() < EXAMPLES {
            group.examples.push(example);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn culprit(family: &str, key: &str) -> Culprit {
        Culprit { family: family.into(), key: key.into(), limit: "at most 1".into() }
    }

    #[test]
    fn rules_come_first_and_long_lists_are_counted() {
        let mut constraints = vec![culprit("stock", "W1/S1"), culprit("rule", "min_volume")];
        constraints.extend((0..30).map(|i| culprit("contact_cap", &format!("C{i:02}"))));
        let bounds = group_bounds((0..5).map(|i| ("x <= 1".to_string(), format!("C{i}/O1"))));
        let text = Contradiction { constraints, bounds, integer_decisions: false, irreducible: true }.sorted().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("these 32 constraints"), "{text}");
        assert_eq!(lines[1], "  - rule min_volume: at most 1");
        assert_eq!(lines[2], "  - contact_cap C00: at most 1");
        assert!(text.contains("and 7 more: 6 contact_cap, 1 stock"), "{text}");
        assert!(text.ends_with("with x <= 1 on 5 columns (e.g. C0/O1, C1/O1, C2/O1)"), "{text}");
    }
}
