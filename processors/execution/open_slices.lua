-- Open a validated batch for the executors: a stream of its slices, with the executors'
-- group, and its entry in the partition's index of runnable batches. Idempotent: a batch
-- opened already (its slice stream exists) is left as it is.
-- KEYS[1] the batch's slice stream, KEYS[2] the runnable index
-- ARGV: group, batch id, number of slices, the batch's index entry
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
for slice = 0, tonumber(ARGV[3]) - 1 do
  redis.call('XADD', KEYS[1], '*', 'batch_id', ARGV[2], 'slice', slice)
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
return 1
