-- Claim one slice of a batch for a consumer: first a slice whose holder went quiet past the
-- lease (the oldest work), else one never delivered. When neither exists and nothing is
-- pending either, every slice is done: the stream and the batch's index entry go.
-- KEYS[1] the batch's slice stream, KEYS[2] the runnable index
-- ARGV: group, consumer, lease ms, batch id
-- Returns {entry id, fields, deliveries}, or 1 (every slice held), or 0 (none left).
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[4])
  return 0
end
local reclaimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', 1)
local entry = reclaimed[2][1]
if entry and entry[2] then
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
  return {entry[1], entry[2], pending[1][4]}
end
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if read and read[1] and read[1][2][1] then
  entry = read[1][2][1]
  return {entry[1], entry[2], 1}
end
if tonumber(redis.call('XPENDING', KEYS[1], ARGV[1])[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[4])
  return 0
end
return 1
