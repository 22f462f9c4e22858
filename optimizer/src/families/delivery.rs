//! Delivery capacity: accepted offers a zone's last mile can deliver over the horizon.

use super::acceptance_cap::{AcceptanceCap, CapSpec, Entity};
use crate::model::Problem;

/// The family's name.
pub const NAME: &str = "delivery_capacity";

/// One row per zone with a delivery capacity, in zone order; prices per zone.
pub static SPEC: CapSpec = CapSpec {
    name: NAME,
    entity: Entity::Zone,
    cap: |problem, zone| problem.zones[zone].delivery_capacity,
    prices: |p| &p.delivery,
    prices_mut: |p| &mut p.delivery,
};

/// The family over `problem`'s capacitated zones.
pub fn family(problem: &Problem) -> AcceptanceCap {
    AcceptanceCap::new(&SPEC, problem)
}
