-- The gc's leader lease: one key holding the id of the gc instance that acts.
-- KEYS[1]: the lease key. ARGV[1]: this instance's id. ARGV[2]: "hold" or "release".
-- ARGV[3]: the lease time in milliseconds (hold only).
-- hold: take the lease if nobody holds it, or renew it if we do; 1 if we hold it now, else 0.
-- release: give it up if we hold it (never someone else's); 1 if we did, else 0.
local holder = redis.call('GET', KEYS[1])
if ARGV[2] == 'release' then
  if holder == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
