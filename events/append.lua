-- Append events of one aggregate to the global stream and the aggregate's own stream,
-- atomically, if and only if the aggregate is still at the version the writer saw.
--
-- KEYS[1]  global stream          KEYS[2]  the aggregate's stream
-- KEYS[3]  the aggregate's version (a string key holding an integer; absent = 0)
-- KEYS[4]  a job stream to enqueue into (used only when ARGV[2] is not empty)
-- ARGV[1]  expected version
-- ARGV[2]  the aggregate id to enqueue as a job on KEYS[4], or "" for none
-- ARGV[3 + 2k], ARGV[4 + 2k]  the `type` and `event` fields of the k-th event
--
-- Returns {1, id1, id2, ...} on success and {0, current_version} on a conflict. The
-- aggregate stream reuses the global entry id so that both streams agree on positions.
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
local expected = tonumber(ARGV[1])
if current ~= expected then
    return {0, current}
end
local result = {1}
for i = 3, #ARGV, 2 do
    local id = redis.call('XADD', KEYS[1], '*', 'type', ARGV[i], 'event', ARGV[i + 1])
    redis.call('XADD', KEYS[2], id, 'type', ARGV[i], 'event', ARGV[i + 1])
    result[#result + 1] = id
end
redis.call('SET', KEYS[3], expected + (#ARGV - 2) / 2)
if ARGV[2] ~= '' then
    redis.call('XADD', KEYS[4], '*', 'batch_id', ARGV[2])
end
return result
