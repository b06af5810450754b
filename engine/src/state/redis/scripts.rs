//! The Lua scripts that update and read state inside Redis, each one
//! atomic on the server, and the encoding they share with the Rust side.
//!
//! * A **sum** (a count, or a sum of an attribute) is a sorted set with one
//!   member per second of event time, `"<second>:<total>"`, scored by the
//!   second: adding to a second replaces its member.
//! * A **distinct count** is a sorted set with one member per value per
//!   second, `"<second>:<fingerprint>"`: exact, not HyperLogLog, so it
//!   agrees with the in-memory store to the unit. A read dedupes the
//!   fingerprints of the window, in time proportional to the sightings in
//!   it.
//! * **Labels** are a hash from label name to its stretches of event time,
//!   `"<set>:<expires>,..."`, merged and cut exactly as the in-memory store
//!   does.
//!
//! Every write prunes what its counter no longer needs and renews the
//! key's lifetime, so an entity that goes quiet disappears from Redis by
//! itself.

use std::sync::LazyLock;

use redis::Script;

/// Counts one event into one entity's counters, once: the event id is
/// remembered among the entity's recent ids, and an id already there
/// (a retry, or a copy sent to another node) counts nothing.
///
/// KEYS[1]: the entity's recent event ids; KEYS[2..]: its counters.
/// ARGV[1]: the event id; ARGV[2]: its second; ARGV[3]: the oldest second
/// an id is remembered for; ARGV[4]: the ids key's lifetime in seconds.
/// Then per counter: `s` (sum) or `d` (distinct), the amount or the
/// fingerprint, the oldest second kept, the key's lifetime in seconds.
/// Returns 1 if counted, 0 if the id had been counted already.
pub(super) static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local second = ARGV[2]
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], second, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
for i = 2, #KEYS do
  local key, a = KEYS[i], 5 + (i - 2) * 4
  if ARGV[a] == 's' then
    local total = tonumber(ARGV[a + 1])
    local found = redis.call('ZRANGEBYSCORE', key, second, second)
    if found[1] then
      total = total + tonumber(string.match(found[1], ':(%d+)$'))
      redis.call('ZREM', key, found[1])
    end
    redis.call('ZADD', key, second, second .. ':' .. string.format('%.0f', total))
  else
    redis.call('ZADD', key, 'NX', second, second .. ':' .. ARGV[a + 1])
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[a + 2])
  redis.call('EXPIRE', key, ARGV[a + 3])
end
return 1
",
    )
});

/// Reads one counter over a window.
///
/// KEYS[1]: the counter. ARGV[1]: `s` or `d`; ARGV[2], ARGV[3]: the first
/// and last second of the window. Returns the total or the distinct count.
pub(super) static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[3])
local n = 0
if ARGV[1] == 's' then
  for _, e in ipairs(entries) do n = n + tonumber(string.match(e, ':(%d+)$')) end
else
  local seen = {}
  for _, e in ipairs(entries) do
    local f = string.match(e, ':(%d+)$')
    if not seen[f] then seen[f] = true; n = n + 1 end
  end
end
return n
",
    )
});

/// Sets a label: a stretch overlapping the new one is extended (never
/// shortened), otherwise a new stretch starts.
///
/// KEYS[1]: the labels. ARGV[1]: the label; ARGV[2]: from (ms); ARGV[3]:
/// until (ms); ARGV[4]: the least lifetime the key needs, in ms.
pub(super) static SET_LABEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local at, expires = tonumber(ARGV[2]), tonumber(ARGV[3])
local current = redis.call('HGET', KEYS[1], ARGV[1])
local out, merged = {}, false
if current then
  for s, e in string.gmatch(current, '(%-?%d+):(%-?%d+)') do
    s, e = tonumber(s), tonumber(e)
    if not merged and s <= expires and at <= e then
      s, e, merged = math.min(s, at), math.max(e, expires), true
    end
    out[#out + 1] = string.format('%.0f:%.0f', s, e)
  end
end
if not merged then out[#out + 1] = string.format('%.0f:%.0f', at, expires) end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(out, ','))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
",
    )
});

/// Clears a label as of a moment: stretches set before it end there;
/// stretches set after it are left alone.
///
/// KEYS[1]: the labels. ARGV[1]: the label; ARGV[2]: the moment (ms).
pub(super) static CLEAR_LABEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local at = tonumber(ARGV[2])
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local out = {}
for s, e in string.gmatch(current, '(%-?%d+):(%-?%d+)') do
  s, e = tonumber(s), tonumber(e)
  if s <= at and at < e then e = at end
  if s < e then out[#out + 1] = string.format('%.0f:%.0f', s, e) end
end
if #out == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], table.concat(out, ','))
end
return 1
",
    )
});

/// The latest event time a script is given: Lua's numbers are doubles,
/// exact up to 2^53, and a label set "for ever" expires at `i64::MAX`.
pub(super) const MAX_EXACT_MS: i64 = (1 << 53) - 1;

/// Whether a label's stretches, as the scripts write them, cover `at_ms`.
pub(super) fn stretches_cover(stretches: &str, at_ms: i64) -> bool {
    stretches.split(',').any(|stretch| {
        let mut bounds = stretch.split(':').map(|n| n.parse::<i64>());
        matches!(
            (bounds.next(), bounds.next()),
            (Some(Ok(set)), Some(Ok(expires))) if set <= at_ms && at_ms < expires
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretches_cover_from_their_start_until_before_their_end() {
        let stretches = "100:200,300:400";
        let covered: Vec<i64> = [99, 100, 199, 200, 250, 300, 399, 400]
            .into_iter()
            .filter(|&at| stretches_cover(stretches, at))
            .collect();
        assert_eq!(covered, [100, 199, 300, 399]);
        assert!(!stretches_cover("", 0));
        assert!(!stretches_cover("garbage", 0));
    }
}
