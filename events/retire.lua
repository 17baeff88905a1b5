-- Retire an archived aggregate from Redis: its stream and snapshot go, and its version key
-- becomes a tombstone (the version, negated), so that no writer can ever append to it again,
-- nor take it for a new aggregate. Only if nothing was appended since it was archived.
--
-- KEYS[1]  the aggregate's version    KEYS[2]  its stream    KEYS[3]  its snapshot
-- KEYS[4]  the floor its stream was trimmed to while it ran (if it was)
-- ARGV[1]  the version that was archived
--
-- Returns 1 when retired (or retired already), 0 when the aggregate moved on since.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local archived = tonumber(ARGV[1])
if current == -archived then
    return 1
end
if current ~= archived then
    return 0
end
redis.call('SET', KEYS[1], -archived)
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return 1
