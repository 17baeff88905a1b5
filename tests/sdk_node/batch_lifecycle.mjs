// The official OpenAI Node SDK, unchanged, against a Batch Gateway: uploads, listings paged by
// the SDK's own `for await`, a batch run to its end and read back, a batch cancelled, and the
// typed errors the SDK builds from our error envelope.
//
//   OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=sk-... \
//     node batch_lifecycle.mjs INPUT.jsonl SLOW_INPUT.jsonl
//
// INPUT.jsonl must finish within the poll deadline; SLOW_INPUT.jsonl must still be running when
// it is cancelled. Prints a JSON report of what it saw on stdout; exits 1 on any mismatch (the
// report then carries `failure`), so tests/sdk_node/test_node_sdk.py can show both.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import OpenAI, { toFile } from 'openai';
import { VERSION } from 'openai/version';

const FILE_PAGE = 2; // several pages over the five uploads below
const BATCH_PAGE = 1; // two pages over the two batches
const EXTRA_UPLOADS = 3;
const POLL_DEADLINE_MS = 60_000;
const POLL_INTERVAL_MS = 100;
const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
const METADATA = { suite: 'node-sdk', run: String(process.pid) };

const report = { sdk_version: VERSION, node_version: process.version };

// Every request the SDK sends, so that pages and retries can be counted, not guessed.
const requests = [];
async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  const { pathname, search } = new URL(url);
  requests.push({ method: init?.method ?? 'GET', path: pathname, query: search, status: response.status });
  return response;
}

function sent(method, pathname) {
  return requests.filter((r) => r.method === method && r.path.endsWith(pathname));
}

// OPENAI_BASE_URL and OPENAI_API_KEY are read by the SDK itself, as in any user's program.
const client = new OpenAI({ fetch: recordingFetch });

async function uploadFiles(inputPath, slowPath) {
  const input = await client.files.create({ file: fs.createReadStream(inputPath), purpose: 'batch' });
  assert.equal(input.object, 'file');
  assert.equal(input.purpose, 'batch');
  assert.equal(input.filename, path.basename(inputPath));
  assert.equal(input.bytes, fs.statSync(inputPath).size);
  const again = await client.files.retrieve(input.id);
  assert.deepEqual(again, input);

  const slowBytes = fs.readFileSync(slowPath);
  const slow = await client.files.create({
    file: await toFile(slowBytes, 'slow.jsonl', { type: 'application/jsonl' }),
    purpose: 'batch',
  });
  assert.equal(slow.bytes, slowBytes.length);
  const extras = [];
  for (let i = 0; i < EXTRA_UPLOADS; i += 1) {
    const extra = await client.files.create({
      file: await toFile(slowBytes, `extra-${i}.jsonl`),
      purpose: 'batch',
    });
    extras.push(extra.id);
  }
  const uploaded = [input.id, slow.id, ...extras];
  report.files = { input: input.id, slow: slow.id, uploaded };
  return { input, slow, uploaded };
}

async function listFiles(uploaded) {
  const before = sent('GET', '/files').length;
  const desc = [];
  for await (const file of client.files.list({ purpose: 'batch', limit: FILE_PAGE })) {
    desc.push(file.id);
  }
  const pages = sent('GET', '/files').length - before;
  const asc = [];
  for await (const file of client.files.list({ purpose: 'batch', limit: FILE_PAGE, order: 'asc' })) {
    asc.push(file.id);
  }
  // Newest first by default, every upload exactly once, and the SDK stops where has_more does.
  assert.deepEqual(desc, [...uploaded].reverse());
  assert.deepEqual(asc, uploaded);
  assert.equal(pages, Math.ceil(uploaded.length / FILE_PAGE));
  report.files.listed = desc;
  report.files.list_pages = pages;
}

// Polls until `wanted(status)`, or a terminal status; returns the batch and the statuses seen.
async function waitFor(batchId, wanted) {
  const statuses = [];
  const deadline = Date.now() + POLL_DEADLINE_MS;
  for (;;) {
    const batch = await client.batches.retrieve(batchId);
    if (statuses.at(-1) !== batch.status) statuses.push(batch.status);
    if (wanted(batch.status) || TERMINAL.has(batch.status)) return { batch, statuses };
    assert.ok(Date.now() < deadline, `${batchId} still ${batch.status} after ${POLL_DEADLINE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

function waitForEnd(batchId) {
  return waitFor(batchId, () => false);
}

function customIds(jsonlText) {
  return jsonlText.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line).custom_id);
}

async function runBatch(input, inputPath) {
  const expected = customIds(fs.readFileSync(inputPath, 'utf8'));
  const endpoint = JSON.parse(fs.readFileSync(inputPath, 'utf8').split('\n')[0]).url;
  const { data: created, request_id: requestId } = await client.batches
    .create({
      input_file_id: input.id,
      endpoint,
      completion_window: '24h',
      metadata: METADATA,
      output_expires_after: { anchor: 'created_at', seconds: 3600 },
    })
    .withResponse();
  assert.equal(created.object, 'batch');
  assert.equal(created.input_file_id, input.id);
  assert.equal(created.endpoint, endpoint);
  assert.deepEqual(created.metadata, METADATA);
  assert.ok(['validating', 'in_progress'].includes(created.status), created.status);

  const { batch, statuses } = await waitForEnd(created.id);
  assert.equal(batch.status, 'completed');
  assert.deepEqual(batch.metadata, METADATA);
  assert.deepEqual(batch.request_counts, { total: expected.length, completed: expected.length, failed: 0 });
  assert.ok(batch.output_file_id, 'a completed batch names its output file');
  assert.equal(batch.error_file_id ?? null, null);
  assert.ok(batch.created_at <= batch.in_progress_at && batch.in_progress_at <= batch.completed_at);

  const output = await client.files.retrieve(batch.output_file_id);
  assert.equal(output.purpose, 'batch_output');
  const text = await (await client.files.content(batch.output_file_id)).text();
  assert.ok(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n').map((line) => JSON.parse(line));
  for (const line of lines) {
    assert.match(line.id, /^batch_req_/);
    assert.equal(line.error, null);
    assert.equal(line.response.status_code, 200);
    assert.equal(line.response.body.object, 'chat.completion');
  }
  const seen = lines.map((line) => line.custom_id);
  assert.equal(new Set(seen).size, seen.length, 'every custom_id once');
  assert.deepEqual([...seen].sort(), [...expected].sort());

  report.batch = {
    id: batch.id,
    status: batch.status,
    statuses_seen: statuses,
    request_id: requestId,
    metadata: batch.metadata,
    request_counts: batch.request_counts,
    output_file_id: batch.output_file_id,
    output_custom_ids: seen,
  };
  return batch;
}

async function cancelBatch(slow) {
  const created = await client.batches.create({
    input_file_id: slow.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  // Cancelled once it runs (its requests never finish), so that it goes through `cancelling`
  // whenever a processor has started on it.
  const running = await waitFor(created.id, (status) => status === 'in_progress');
  assert.equal(running.batch.status, 'in_progress');
  const cancelling = await client.batches.cancel(created.id);
  assert.equal(cancelling.id, created.id);
  assert.ok(['cancelling', 'cancelled'].includes(cancelling.status), cancelling.status);
  const { batch, statuses } = await waitForEnd(created.id);
  assert.equal(batch.status, 'cancelled');
  assert.ok(batch.cancelling_at >= batch.in_progress_at && batch.cancelled_at >= batch.cancelling_at);
  report.cancelled = {
    id: batch.id,
    cancel_status: cancelling.status,
    statuses_seen: [...running.statuses, ...statuses],
    status: batch.status,
  };
  return batch;
}

async function listBatches(newestFirst) {
  const before = sent('GET', '/batches').length;
  const ids = [];
  for await (const batch of client.batches.list({ limit: BATCH_PAGE })) {
    ids.push(batch.id);
  }
  const pages = sent('GET', '/batches').length - before;
  assert.deepEqual(ids, newestFirst);
  assert.equal(pages, newestFirst.length / BATCH_PAGE);
  report.batches_list = { ids, pages };
}

// What the SDK made of an error response: its class, and the envelope's fields it kept.
async function caught(call, errorClass) {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${error?.constructor?.name}: ${error}`);
    assert.ok(error instanceof OpenAI.APIError);
    return {
      class: error.constructor.name,
      status: error.status,
      type: error.type,
      message: error.error?.message,
      param: error.param ?? null,
      code: error.code ?? null,
    };
  }
  assert.fail(`expected ${errorClass.name}, but the call succeeded`);
}

async function typedErrors(input, completed) {
  const missingBatch = `batch_${'0'.repeat(32)}`;
  const missingFile = `file-${'0'.repeat(24)}`;
  const notFound = await caught(() => client.batches.retrieve(missingBatch), OpenAI.NotFoundError);
  assert.equal(notFound.status, 404);
  assert.equal(notFound.type, 'invalid_request_error');
  assert.equal(notFound.message, `No such Batch object: ${missingBatch}`);
  assert.equal(notFound.param, 'batch_id');
  const fileNotFound = await caught(() => client.files.retrieve(missingFile), OpenAI.NotFoundError);
  assert.equal(fileNotFound.status, 404);
  assert.equal(fileNotFound.message, `No such File object: ${missingFile}`);

  const badRequest = await caught(
    () => client.batches.create({ input_file_id: input.id, endpoint: '/v1/nowhere', completion_window: '24h' }),
    OpenAI.BadRequestError,
  );
  assert.equal(badRequest.status, 400);
  assert.equal(badRequest.param, 'endpoint');
  assert.equal(badRequest.code, 'invalid_value');
  assert.match(badRequest.message, /^Invalid value for 'endpoint': '\/v1\/nowhere'/);

  const conflict = await caught(() => client.batches.cancel(completed.id), OpenAI.ConflictError);
  assert.equal(conflict.status, 409);
  assert.equal(conflict.message, "Cannot cancel a batch with status 'completed'.");
  // The SDK retries a 409 unless told not to: our `x-should-retry: false` keeps it to one try.
  const conflictTries = sent('POST', `/batches/${completed.id}/cancel`).length;
  assert.equal(conflictTries, 1);

  report.errors = { not_found: notFound, file_not_found: fileNotFound, bad_request: badRequest, conflict };
  report.errors.conflict.tries = conflictTries;
}

async function main() {
  const [inputPath, slowPath] = process.argv.slice(2);
  assert.ok(inputPath && slowPath, 'usage: node batch_lifecycle.mjs INPUT.jsonl SLOW_INPUT.jsonl');
  const { input, slow, uploaded } = await uploadFiles(inputPath, slowPath);
  await listFiles(uploaded);
  const completed = await runBatch(input, inputPath);
  const cancelled = await cancelBatch(slow);
  await listBatches([cancelled.id, completed.id]);
  await typedErrors(input, completed);
  report.requests = requests.length;
}

try {
  await main();
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (error) {
  report.failure = String(error?.stack ?? error);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exitCode = 1;
}
