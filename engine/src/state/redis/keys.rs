//! Where each piece of state lives in Redis.
//!
//! Every key of one entity carries the same hash tag, `{<kind>:<id>}`, so
//! in Redis Cluster they all hash to one slot and a script may update an
//! entity's counters, and check its recent event ids, in one atomic step.
//! Counters are named by what they count (a stable digest of the counter's
//! shape), never by the engine's counter ids: ids belong to one engine's
//! catalog, while the shape is the same on every node and across restarts.

use crate::event::{Entity, EntityKind};

/// The keys of one entity under a prefix.
pub(super) struct EntityKeys {
    /// `<prefix>:{<kind>:<escaped id>}`.
    base: String,
}

impl EntityKeys {
    pub(super) fn new(prefix: &str, entity: &Entity) -> Self {
        let kind = match entity.kind {
            EntityKind::Account => 'a',
            EntityKind::Group => 'g',
        };
        let mut base = String::with_capacity(prefix.len() + entity.id.len() + 6);
        base.push_str(prefix);
        base.push_str(":{");
        base.push(kind);
        base.push(':');
        escape_into(&entity.id, &mut base);
        base.push('}');
        EntityKeys { base }
    }

    /// One counter's history: a sorted set scored by event second.
    pub(super) fn counter(&self, shape_key: &str) -> String {
        format!("{}:c:{shape_key}", self.base)
    }

    /// The entity's labels: a hash from label name to its stretches.
    pub(super) fn labels(&self) -> String {
        format!("{}:labels", self.base)
    }

    /// The ids of the events recently counted for the entity.
    pub(super) fn counted(&self) -> String {
        format!("{}:counted", self.base)
    }
}

/// An id made safe inside a hash tag: Redis Cluster hashes what lies
/// between the first `{` and the next `}`, so neither may appear inside.
fn escape_into(id: &str, out: &mut String) {
    for c in id.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
}

/// The slot Redis Cluster gives a key: what a test uses to check that an
/// entity's keys share one.
#[cfg(test)]
pub(super) fn hash_tag(key: &str) -> &str {
    let Some(open) = key.find('{') else {
        return key;
    };
    match key[open + 1..].find('}') {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entitys_keys_share_one_hash_tag_whatever_its_id_holds() {
        for id in ["alice", "a}b{c", "{x}", "%7D", ""] {
            let keys = EntityKeys::new("enf", &Entity::account(id));
            let tag = hash_tag(&keys.labels()).to_string();
            assert_eq!(hash_tag(&keys.counter("0123abcd")), tag, "{id}");
            assert_eq!(hash_tag(&keys.counted()), tag, "{id}");
            assert!(tag.starts_with("a:"), "{tag}");
        }
        // Escaping keeps distinct ids distinct, and kinds apart.
        let key = |e: Entity| EntityKeys::new("enf", &e).labels();
        assert_ne!(key(Entity::account("%7D")), key(Entity::account("}")));
        assert_ne!(key(Entity::account("x")), key(Entity::group("x")));
    }
}
