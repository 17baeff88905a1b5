-- Set the idle time of a pending job entry, only while the calling consumer holds it.
-- One step, so a heartbeat can never take back an entry another processor reclaimed between
-- a check and a claim (XPENDING then XCLAIM from the client were two).
-- KEYS[1] the job stream; ARGV: group, consumer, entry id, idle ms, delivery count ('' keeps it)
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then
  return 0
end
if ARGV[5] == '' then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
else
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4],
    'RETRYCOUNT', ARGV[5], 'JUSTID')
end
return 1
