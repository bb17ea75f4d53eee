//! Stable ids across nightly runs: a person (or family) keeps its id when its records persist.
//!
//! Each run clusters records afresh; ids are then carried forward from the previous registry
//! version by overlap, the way a data centre would reconcile by hand:
//! 1. Every new group is compared with the old ids its members held (members are matched by a
//!    key that survives re-sorting of the extract: a record fingerprint for persons, the
//!    person id for families). The largest overlaps are settled first; an old id goes to one
//!    group only and a group takes one old id only.
//! 2. A group left without an id takes an old id that nobody took and that shares its
//!    fallback key (the registry NIK for persons): a person whose only record was corrected
//!    keeps their id.
//! 3. Anything else gets a fresh id, numbered after the highest id ever issued.
//!
//! Nothing is renumbered silently: an old id that lost part of its records to another group is
//! a `split`, an old id absorbed into another group is a `merged`, an old id with no records
//! left is `retired`, and a fresh id is `created` (see [`ChangeEvent`]).

use std::collections::HashMap;

/// What happened to an id between two registry versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// A new id for a group with no records in the previous version.
    Created,
    /// A new id for records that belonged to `related_id` in the previous version.
    Split,
    /// The previous id `id` no longer exists: its records now belong to `related_id`.
    Merged,
    /// The previous id `id` has no records left.
    Retired,
    /// `id` was kept through its fallback key (for example the same NIK) after all its
    /// records changed.
    KeptByKey,
}

impl ChangeKind {
    /// Code written to the changes table.
    pub fn code(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Split => "split",
            ChangeKind::Merged => "merged",
            ChangeKind::Retired => "retired",
            ChangeKind::KeptByKey => "kept_by_key",
        }
    }
}

/// One row of the changes table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangeEvent {
    /// What happened.
    pub kind: ChangeKind,
    /// The id concerned.
    pub id: String,
    /// The other id involved (split from, merged into).
    pub related_id: Option<String>,
    /// Members shared between the two (0 for created and retired).
    pub members: u64,
}

/// The outcome of [`carry_forward`].
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// The id of every new group, by group index.
    pub ids: Vec<String>,
    /// What changed, sorted.
    pub events: Vec<ChangeEvent>,
    /// The number the next fresh id will take.
    pub next_number: u64,
}

/// An id family: the prefix and the width of the number (`P000000001`).
#[derive(Debug, Clone, Copy)]
pub struct IdFormat {
    /// Letter(s) before the number.
    pub prefix: &'static str,
    /// Digits, zero-padded.
    pub width: usize,
}

impl IdFormat {
    /// Person ids: `P` and nine digits.
    pub const PERSON: IdFormat = IdFormat {
        prefix: "P",
        width: 9,
    };
    /// Family ids: `F` and nine digits.
    pub const FAMILY: IdFormat = IdFormat {
        prefix: "F",
        width: 9,
    };

    /// The id with this number.
    pub fn format(self, number: u64) -> String {
        format!("{}{:0width$}", self.prefix, number, width = self.width)
    }

    /// The number of an id of this format.
    pub fn number(self, id: &str) -> Option<u64> {
        id.strip_prefix(self.prefix)?.parse().ok()
    }
}

/// The previous version's assignment.
#[derive(Debug, Default, Clone)]
pub struct Previous<'a> {
    /// Member key -> the id that member had (a key may occur more than once).
    pub members: Vec<(&'a str, &'a str)>,
    /// Fallback key of each previous id (for example its NIK).
    pub fallback: Vec<(&'a str, &'a str)>,
    /// The next number recorded by the previous version (0 when unknown: then one past the
    /// highest id seen).
    pub next_number: u64,
}

/// Assigns ids to `groups` new groups. `members` lists (group index, member key) for every
/// member; `fallback` gives a group's fallback key. With no previous version every group is
/// numbered in index order and no events are recorded (a first registry has nothing to
/// compare with).
pub fn carry_forward(
    groups: usize,
    members: &[(usize, &str)],
    fallback: &[Option<&str>],
    previous: &Previous,
    format: IdFormat,
) -> Carried {
    let first_version = previous.members.is_empty();
    let mut next = previous.next_number.max(1);
    let old_ids = previous
        .members
        .iter()
        .map(|(_, id)| id)
        .chain(previous.fallback.iter().map(|(id, _)| id));
    for id in old_ids {
        if let Some(n) = format.number(id) {
            next = next.max(n + 1);
        }
    }

    // Overlap of each (group, old id). Keys are nearly unique, so one map entry per key plus
    // a side map for the rare key held by several ids keeps allocations per key away.
    let mut old_of_key: HashMap<&str, &str> = HashMap::with_capacity(previous.members.len());
    let mut more_of_key: HashMap<&str, Vec<&str>> = HashMap::new();
    for &(key, id) in &previous.members {
        match old_of_key.entry(key) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(e) => {
                if *e.get() != id {
                    let more = more_of_key.entry(key).or_default();
                    if !more.contains(&id) {
                        more.push(id);
                    }
                }
            }
        }
    }
    let mut hits: Vec<(usize, &str)> = Vec::with_capacity(members.len());
    for &(group, key) in members {
        if let Some(id) = old_of_key.get(key) {
            hits.push((group, id));
            if let Some(more) = more_of_key.get(key) {
                hits.extend(more.iter().map(|id| (group, *id)));
            }
        }
    }
    drop(old_of_key);
    hits.sort_unstable();
    let mut overlap: Vec<((usize, &str), u64)> = Vec::new();
    for hit in hits {
        match overlap.last_mut() {
            Some((last, n)) if *last == hit => *n += 1,
            _ => overlap.push((hit, 1)),
        }
    }
    let mut ranked: Vec<(u64, &str, usize)> =
        overlap.iter().map(|&((g, id), n)| (n, id, g)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));

    let mut ids: Vec<Option<String>> = vec![None; groups];
    let mut taken: HashMap<&str, usize> = HashMap::new();
    for &(_, id, group) in &ranked {
        if ids[group].is_none() && !taken.contains_key(id) {
            ids[group] = Some(id.to_string());
            taken.insert(id, group);
        }
    }

    // Fallback keys for groups without an id.
    let mut events = Vec::new();
    let overlapped: std::collections::HashSet<&str> =
        overlap.iter().map(|((_, id), _)| *id).collect();
    let mut old_of_fallback: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, key) in &previous.fallback {
        old_of_fallback.entry(key).or_default().push(id);
    }
    for (group, id) in ids.iter_mut().enumerate() {
        if id.is_some() {
            continue;
        }
        let Some(key) = fallback.get(group).copied().flatten() else {
            continue;
        };
        // Only an id whose records are all gone: one whose records went to another group
        // was merged there, and is reported so.
        let free = old_of_fallback.get(key).and_then(|olds| {
            olds.iter()
                .filter(|o| !taken.contains_key(*o) && !overlapped.contains(*o))
                .min()
        });
        if let Some(old) = free {
            taken.insert(old, group);
            *id = Some(old.to_string());
            events.push(ChangeEvent {
                kind: ChangeKind::KeptByKey,
                id: old.to_string(),
                related_id: None,
                members: 0,
            });
        }
    }

    // Fresh ids, in group order.
    let mut fresh = vec![false; groups];
    let ids: Vec<String> = ids
        .into_iter()
        .enumerate()
        .map(|(group, id)| {
            id.unwrap_or_else(|| {
                fresh[group] = true;
                let id = format.format(next);
                next += 1;
                id
            })
        })
        .collect();

    if !first_version {
        let mut overlapping_groups: HashMap<&str, Vec<(usize, u64)>> = HashMap::new();
        for &((group, old), n) in &overlap {
            overlapping_groups.entry(old).or_default().push((group, n));
        }
        for (group, id) in ids.iter().enumerate() {
            if !fresh[group] {
                continue;
            }
            // The largest old id this group came from, if any.
            let start = overlap.partition_point(|((g, _), _)| *g < group);
            let origin = overlap[start..]
                .iter()
                .take_while(|((g, _), _)| *g == group)
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.1.cmp(a.0.1)));
            events.push(match origin {
                Some(((_, old), n)) => ChangeEvent {
                    kind: ChangeKind::Split,
                    id: id.clone(),
                    related_id: Some(old.to_string()),
                    members: *n,
                },
                None => ChangeEvent {
                    kind: ChangeKind::Created,
                    id: id.clone(),
                    related_id: None,
                    members: 0,
                },
            });
        }
        let mut old_ids: Vec<&str> = previous
            .members
            .iter()
            .map(|(_, id)| *id)
            .chain(previous.fallback.iter().map(|(id, _)| *id))
            .collect();
        old_ids.sort_unstable();
        old_ids.dedup();
        for old in old_ids {
            if taken.contains_key(old) {
                continue;
            }
            match overlapping_groups.get(old).and_then(|groups| {
                groups
                    .iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            }) {
                Some(&(group, n)) => events.push(ChangeEvent {
                    kind: ChangeKind::Merged,
                    id: old.to_string(),
                    related_id: Some(ids[group].clone()),
                    members: n,
                }),
                None => events.push(ChangeEvent {
                    kind: ChangeKind::Retired,
                    id: old.to_string(),
                    related_id: None,
                    members: 0,
                }),
            }
        }
    }
    events.sort();
    Carried {
        ids,
        events,
        next_number: next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: IdFormat = IdFormat::PERSON;

    fn previous<'a>(
        members: &[(&'a str, &'a str)],
        fallback: &[(&'a str, &'a str)],
    ) -> Previous<'a> {
        Previous {
            members: members.to_vec(),
            fallback: fallback.to_vec(),
            next_number: 0,
        }
    }

    #[test]
    fn a_first_registry_numbers_groups_in_order_without_events() {
        let carried = carry_forward(
            3,
            &[(0, "a"), (1, "b"), (2, "c")],
            &[],
            &Previous::default(),
            P,
        );
        assert_eq!(carried.ids, vec!["P000000001", "P000000002", "P000000003"]);
        assert!(carried.events.is_empty());
        assert_eq!(carried.next_number, 4);
    }

    #[test]
    fn ids_follow_their_records_whatever_the_group_order() {
        let before = previous(
            &[
                ("a", "P000000001"),
                ("b", "P000000001"),
                ("c", "P000000002"),
            ],
            &[],
        );
        // The extract was re-sorted: groups come in the other order, one record is new.
        let carried = carry_forward(
            2,
            &[(0, "c"), (1, "a"), (1, "b"), (1, "d")],
            &[],
            &before,
            P,
        );
        assert_eq!(carried.ids, vec!["P000000002", "P000000001"]);
        assert!(carried.events.is_empty(), "{:?}", carried.events);
    }

    #[test]
    fn splits_merges_and_retirements_are_recorded() {
        let before = previous(
            &[
                ("a", "P000000001"),
                ("b", "P000000001"),
                ("c", "P000000001"),
                ("d", "P000000002"),
                ("e", "P000000003"),
                ("f", "P000000004"),
            ],
            &[],
        );
        // a,b stay; c splits off; d and e merge; f is gone; g is new.
        let carried = carry_forward(
            4,
            &[(0, "a"), (0, "b"), (1, "c"), (2, "d"), (2, "e"), (3, "g")],
            &[],
            &before,
            P,
        );
        assert_eq!(carried.ids[0], "P000000001");
        assert_eq!(carried.ids[2], "P000000002", "the smaller id wins a tie");
        assert_eq!(carried.ids[1], "P000000005");
        assert_eq!(carried.ids[3], "P000000006");
        let events: Vec<(ChangeKind, &str, Option<&str>)> = carried
            .events
            .iter()
            .map(|e| (e.kind, e.id.as_str(), e.related_id.as_deref()))
            .collect();
        assert_eq!(
            events,
            vec![
                (ChangeKind::Created, "P000000006", None),
                (ChangeKind::Split, "P000000005", Some("P000000001")),
                (ChangeKind::Merged, "P000000003", Some("P000000002")),
                (ChangeKind::Retired, "P000000004", None),
            ]
        );
    }

    #[test]
    fn a_changed_single_record_keeps_its_id_through_the_fallback_key() {
        let before = previous(
            &[("old-row", "P000000007"), ("x", "P000000008")],
            &[
                ("P000000007", "3601015205850001"),
                ("P000000008", "3601015205850002"),
            ],
        );
        let carried = carry_forward(
            2,
            &[(0, "x"), (1, "corrected-row")],
            &[Some("3601015205850002"), Some("3601015205850001")],
            &before,
            P,
        );
        assert_eq!(carried.ids, vec!["P000000008", "P000000007"]);
        assert_eq!(carried.events.len(), 1);
        assert_eq!(carried.events[0].kind, ChangeKind::KeptByKey);
        assert_eq!(
            carried.next_number, 9,
            "numbering continues after the highest id"
        );
    }
}
