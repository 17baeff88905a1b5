// One batch, live: the page folds the batch's Server-Sent Events (GET /v1/batches/{id}/events,
// replayed from the batch's first event, then live) into its figures, timeline, files, usage,
// errors and chart. No polling: when the stream drops, EventSource resumes from Last-Event-ID.
"use strict";

const TYPES = [
  "batch.created", "batch.validated", "batch.in_progress", "batch.progress",
  "batch.slice_done", "batch.finalizing", "batch.cancel_requested", "batch.completed",
  "batch.failed", "batch.cancelled", "batch.expired",
];
const STATUS_OF = {
  "batch.created": "validating", "batch.validated": "in_progress",
  "batch.in_progress": "in_progress", "batch.finalizing": "finalizing",
  "batch.cancel_requested": "cancelling", "batch.completed": "completed",
  "batch.failed": "failed", "batch.cancelled": "cancelled", "batch.expired": "expired",
};
const STEP_OF = {
  "batch.created": "validating", "batch.validated": "in progress", "batch.finalizing": "finalizing",
  "batch.cancel_requested": "cancelling",
};
const ENDED = new Set(["completed", "failed", "cancelled", "expired"]);
// Requests per second are averaged over this much event time, so the chart is not a sawtooth
// of one-second commits from several processors.
const RATE_WINDOW_SECONDS = 5;

const root = document.body.dataset.root;
const section = document.getElementById("batch");
const batchId = section.dataset.batch;
const state = {
  status: section.dataset.status,
  total: Number(section.dataset.total),
  completed: Number(section.dataset.completed),
  failed: Number(section.dataset.failed),
  samples: [],          // [occurred_at, done, total_tokens] at each progress event
  errors: [],
};
const series = { x: [], requests: [], tokens: [] };
let chart = null;

const $ = (id) => document.getElementById(id);

function text(id, value) { $(id).textContent = String(value); }

function duration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

function when(seconds) {
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function fileLink(id, fileId, suffix) {
  const holder = $(id);
  if (!fileId || holder.querySelector("a")) return;
  const link = document.createElement("a");
  link.className = "mono";
  link.href = `${root}v1/files/${fileId}/content`;
  link.download = `${batchId}_${suffix}.jsonl`;
  link.textContent = fileId;
  holder.replaceChildren(link);
}

function reach(step, at) {
  const item = document.querySelector(`#timeline li[data-step="${step}"]`);
  if (!item) return;
  item.classList.add("reached");
  item.querySelector("time").textContent = when(at);
}

function ended(status, at) {
  const last = document.querySelector("#timeline li:last-child");
  last.dataset.step = status;
  last.querySelector("span").textContent = status;
  reach(status, at);
}

function showErrors(errors) {
  if (!errors.length) return;
  const rows = errors.map((error) => {
    const row = document.createElement("tr");
    for (const [value, cls] of [[error.line ?? "–", "num"], [error.code, "mono"], [error.message, ""]]) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      if (cls) cell.className = cls;
      row.append(cell);
    }
    return row;
  });
  $("errors").replaceChildren(...rows);
}

function rate() {
  const samples = state.samples;
  if (samples.length < 2) return null;
  const last = samples[samples.length - 1];
  let first = samples[0];
  for (const sample of samples) if (last[0] - sample[0] <= 30) { first = sample; break; }
  return last[0] > first[0] ? (last[1] - first[1]) / (last[0] - first[0]) : null;
}

function chartPoint(at, done, tokens) {
  const samples = state.samples;
  let base = samples[0];
  for (const sample of samples) if (at - sample[0] <= RATE_WINDOW_SECONDS) { base = sample; break; }
  const span = at - base[0];
  series.x.push(at);
  series.requests.push(span > 0 ? (done - base[1]) / span : 0);
  series.tokens.push(span > 0 ? (tokens - base[2]) / span : 0);
  drawChart();
}

function drawChart() {
  if (typeof uPlot === "undefined" || series.x.length < 2) return;
  const data = [series.x, series.requests, series.tokens];
  if (chart) { chart.setData(data); return; }
  const holder = $("chart");
  chart = new uPlot({
    width: holder.clientWidth - 16,
    height: 240,
    series: [
      {},
      { label: "requests/s", stroke: "#2856c7", width: 2, scale: "req" },
      { label: "tokens/s", stroke: "#1f9d55", width: 2, scale: "tok" },
    ],
    axes: [{}, { scale: "req", label: "requests/s" }, { scale: "tok", side: 1, label: "tokens/s", grid: { show: false } }],
  }, data, holder);
}

function render() {
  const { status, total, completed, failed } = state;
  const badge = $("status");
  badge.textContent = status.replace("_", " ");
  badge.className = `status ${status}`;
  section.dataset.status = status;
  text("completed", completed);
  text("failed", failed);
  text("total", total);
  $("bar-ok").style.width = total ? `${(100 * completed) / total}%` : "0%";
  $("bar-bad").style.width = total ? `${(100 * failed) / total}%` : "0%";
  const perSecond = rate();
  text("rate", perSecond == null ? "–" : perSecond < 100 ? perSecond.toFixed(1) : perSecond.toFixed(0));
  const left = perSecond && !ENDED.has(status) ? (total - completed - failed) / perSecond : null;
  text("eta", duration(left));
  $("cancel").disabled = !(status === "validating" || status === "in_progress");
}

function apply(type, envelope) {
  const data = envelope.data || {};
  const at = envelope.occurred_at;
  state.status = STATUS_OF[type] || state.status;
  if (type === "batch.validated") state.total = data.total;
  const counts = data.request_counts;
  if (counts) Object.assign(state, { total: counts.total, completed: counts.completed, failed: counts.failed });
  const usage = data.usage;
  if (usage) {
    text("input-tokens", usage.input_tokens);
    text("cached-tokens", usage.cached_tokens);
    text("output-tokens", usage.output_tokens);
    text("reasoning-tokens", usage.reasoning_tokens);
    text("total-tokens", usage.total_tokens);
  }
  if (type === "batch.in_progress" && state.samples.length === 0) {
    reach("in progress", at);
    state.samples.push([at, state.completed + state.failed, 0]);
  }
  if (type === "batch.progress" && usage) {
    const done = state.completed + state.failed;
    if (state.samples.length === 0) state.samples.push([at, 0, 0]);
    chartPoint(at, done, usage.total_tokens);
    state.samples.push([at, done, usage.total_tokens]);
  }
  if (STEP_OF[type]) reach(STEP_OF[type], at);
  if (ENDED.has(state.status)) ended(state.status, at);
  fileLink("output-file", data.output_file_id, "output");
  fileLink("error-file", data.error_file_id, "error");
  if (data.errors && data.errors.length) showErrors(data.errors);
  render();
}

function follow() {
  const source = new EventSource(`${root}v1/batches/${batchId}/events`);
  const live = $("live");
  source.onopen = () => { live.hidden = false; };
  source.onerror = () => { live.hidden = true; };
  for (const type of TYPES) {
    source.addEventListener(type, (message) => {
      apply(type, JSON.parse(message.data));
      // The server ends the stream after the terminal event; do not let EventSource reopen it.
      if (ENDED.has(state.status)) { source.close(); live.hidden = true; }
    });
  }
}

$("cancel").addEventListener("click", async () => {
  const message = $("message");
  $("cancel").disabled = true;
  const response = await fetch(`${root}v1/batches/${batchId}/cancel`, { method: "POST", credentials: "same-origin" });
  const body = await response.json().catch(() => null);
  if (response.ok) {
    message.textContent = "Cancel requested.";
    message.className = "";
  } else {
    message.textContent = body && body.error ? body.error.message : `${response.status} ${response.statusText}`;
    message.className = "error";
    render();
  }
});

// An ended batch is followed too: its stream replays the whole history (for the chart) and
// ends with the terminal event.
window.addEventListener("load", follow);
