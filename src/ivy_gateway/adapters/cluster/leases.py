"""The Lua scripts behind meter leases, and the lease value format ``"{owner}|{token}"``.

Each script runs atomically in Redis, so "read the lease, decide, write it" cannot
interleave with another instance doing the same.
"""

from __future__ import annotations

from ivy_gateway.domain.cluster import Lease
from ivy_gateway.domain.meter import MeterId

__all__ = ["ACQUIRE", "ACQUIRE_FREE", "RELEASE", "RENEW", "parse_lease", "text"]

# KEYS: lease, fence. ARGV: owner, ttl ms, floor. → {token, previous value or ""}
ACQUIRE = """
local floor = tonumber(ARGV[3])
if tonumber(redis.call('GET', KEYS[2]) or '0') < floor then redis.call('SET', KEYS[2], floor) end
local token = redis.call('INCR', KEYS[2])
local prev = redis.call('GET', KEYS[1]) or ''
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return {token, prev}
"""
# Like _ACQUIRE but only when free (reconciling a lease that expired or was never taken).
ACQUIRE_FREE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('GET', KEYS[1])} end
local floor = tonumber(ARGV[3])
if tonumber(redis.call('GET', KEYS[2]) or '0') < floor then redis.call('SET', KEYS[2], floor) end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return {token, ''}
"""
# KEYS: lease. ARGV: "owner|token", ttl ms. → 0 renewed, -1 missing, -2 someone else's
RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 0 end
if not v then return -1 end
return -2
"""
# KEYS: lease. ARGV: "owner|token". → 1 it was ours (or free), 0 someone else holds it
RELEASE = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
if not v then return 1 end
return 0
"""


def text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def parse_lease(meter: MeterId, raw: object) -> Lease | None:
    owner, sep, token = text(raw).rpartition("|")
    if not sep or not token.isdigit():
        return None
    return Lease(meter, owner, int(token))
