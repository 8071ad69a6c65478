"""The Lua transcription of :class:`vecml_async._budget_state.BudgetState` that Redis runs.

One script does every operation on a budget atomically, on Redis's own clock (``TIME``), so
the clocks of the machines sharing the budget do not matter:

* ``acquire``: recover, reserve the next GCRA slot, remember its start; answers the seconds
  the caller must wait before starting its call;
* ``refused``: the server refused a call; lowers the rate once per burst (without
  recovering first, as the local limiter does);
* ``peek``: recover only (for ``current_rate``).

``KEYS[1]`` is a hash (``rate``, ``target``, ``last_change``, ``last_decrease``, ``tat``) and
``KEYS[2]`` a list of recent call starts; both expire after ``ttl`` milliseconds of disuse.
``ARGV``: op, ceiling (``""``: none), adaptive (``"1"``/``"0"``), floor, decrease factor,
recovery per second, decrease interval, ttl, history length, recovery step fraction, the
slot margin, and an optional time to use instead of ``TIME`` (absent or ``""``: Redis's
clock).

Times are seconds stored with 17 significant digits (Lua's ``tostring`` keeps 14, which
would round ``TIME`` to 0.1 ms). The answer is ``{wait, allowed rate ("": unlimited),
"1" if the rate changed, now}`` as strings (Redis truncates Lua numbers to integers).
"""

from __future__ import annotations

__all__ = ["BUDGET_SCRIPT"]

BUDGET_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local function fmt(x) return string.format('%.17g', x) end
local op = ARGV[1]
local ceiling = tonumber(ARGV[2])
local adaptive = ARGV[3] == '1'
local floor = tonumber(ARGV[4])
local factor = tonumber(ARGV[5])
local recovery = tonumber(ARGV[6])
local interval = tonumber(ARGV[7])
local ttl = tonumber(ARGV[8])
local history = tonumber(ARGV[9])
local step = tonumber(ARGV[10])
local margin = tonumber(ARGV[11])
local now = tonumber(ARGV[12] or '')
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local h = redis.call('HMGET', KEYS[1], 'rate', 'target', 'last_change', 'last_decrease', 'tat')
local rate = tonumber(h[1])
local target = ceiling or tonumber(h[2])
local last_change = tonumber(h[3]) or 0
local last_decrease = tonumber(h[4])
local tat = tonumber(h[5]) or 0
local changed = false
local wait = 0

local function allowed()
  if rate ~= nil then return rate end
  return ceiling
end

local function recover()
  if rate == nil or target == nil then return end
  local gained = target * recovery * (now - last_change)
  if gained < rate * step then return end
  last_change = now
  changed = true
  if rate + gained >= target then
    rate = nil
    if ceiling == nil then target = nil end
  else
    rate = rate + gained
  end
end

local function achieved()
  local count = 0
  for _, s in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local v = tonumber(s)
    if v > now - 1 and v <= now then count = count + 1 end
  end
  if ceiling ~= nil then count = math.min(count, math.floor(ceiling)) end
  return math.max(count, floor)
end

local function refused()
  if not adaptive then return end
  if rate ~= nil and last_decrease ~= nil and now - last_decrease < interval then return end
  local current = rate
  if current == nil then current = achieved() end
  if target == nil then target = current end
  rate = math.max(floor, current * factor)
  last_change = now
  last_decrease = now
  changed = true
end

if op == 'refused' then
  refused()
else
  recover()
end
if op == 'acquire' then
  local r = allowed()
  if r ~= nil then
    local slot = math.max(now, tat)
    tat = slot + (1 + margin) / r
    wait = slot - now
  end
  redis.call('RPUSH', KEYS[2], fmt(now + wait))
  redis.call('LTRIM', KEYS[2], -history, -1)
end

redis.call('HSET', KEYS[1], 'last_change', fmt(last_change), 'tat', fmt(tat))
if rate ~= nil then redis.call('HSET', KEYS[1], 'rate', fmt(rate))
else redis.call('HDEL', KEYS[1], 'rate') end
if target ~= nil then redis.call('HSET', KEYS[1], 'target', fmt(target))
else redis.call('HDEL', KEYS[1], 'target') end
if last_decrease ~= nil then redis.call('HSET', KEYS[1], 'last_decrease', fmt(last_decrease)) end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local a = allowed()
return {fmt(wait), a and fmt(a) or '', changed and '1' or '0', fmt(now)}
"""
