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
// The stream replays the batch from its first event: the figures are rebuilt from zero by it,
// so that the chart's differences never start from the server's already-final counts.
const state = {
  status: section.dataset.status,
  total: Number(section.dataset.total),
  completed: Number(section.dataset.completed),
  failed: Number(section.dataset.failed),
  startedAt: numberOrNull(section.dataset.startedAt),
  validatedAt: null,
  endedAt: numberOrNull(section.dataset.endedAt),
  samples: [],          // [occurred_at, done, total_tokens] at each progress event
};
const series = { x: [], requests: [], tokens: [] };
let chart = null;

const $ = (id) => document.getElementById(id);

function numberOrNull(value) {
  return value === undefined || value === "" ? null : Number(value);
}

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
  let item = document.querySelector(`#timeline li[data-step="${step}"]`);
  if (!item) {
    // A step the page was rendered without (a cancel asked for since): before the end.
    item = document.createElement("li");
    item.dataset.step = step;
    item.append(Object.assign(document.createElement("span"), { textContent: step }), " ",
      document.createElement("time"));
    const last = document.querySelector("#timeline li:last-child");
    last.before(item);
  }
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

// Requests a second over the run so far, as the list computes it (console/batch_view.py): from
// validation to finalizing (or now, while it runs); none for a cancelled or expired batch,
// whose counts end with every request that never ran.
function pace() {
  const done = state.completed + state.failed;
  if (state.startedAt == null || done === 0) return null;
  if (state.status === "cancelled" || state.status === "expired") return null;
  const until = state.endedAt ?? Date.now() / 1000;
  return done / Math.max(until - state.startedAt, 1);
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
  holder.replaceChildren();
  chart = new uPlot({
    // UTC, as every other time on the page.
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    legend: { live: false },
    width: holder.clientWidth - 16,
    height: 240,
    series: [
      {},
      { label: "requests/s", stroke: "#2856c7", width: 2, scale: "req" },
      { label: "tokens/s", stroke: "#1f9d55", width: 2, dash: [6, 4], scale: "tok" },
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
  const perSecond = pace();
  text("rate", perSecond == null ? "–" : perSecond < 100 ? perSecond.toFixed(1) : perSecond.toFixed(0));
  const left = perSecond && status === "in_progress" ? (total - completed - failed) / perSecond : null;
  text("eta", duration(left));
  $("cancel").disabled = !(status === "validating" || status === "in_progress");
}

function apply(type, envelope) {
  const data = envelope.data || {};
  const at = envelope.occurred_at;
  if (type === "batch.created") {
    Object.assign(state, {
      total: 0, completed: 0, failed: 0, startedAt: null, validatedAt: null, endedAt: null, samples: [],
    });
    Object.assign(series, { x: [], requests: [], tokens: [] });
  }
  // A slice claimed after a cancel was asked for does not take the batch back to in progress:
  // only its terminal event moves a cancelling batch on.
  const next = STATUS_OF[type];
  if (next && !(state.status === "cancelling" && !ENDED.has(next))) state.status = next;
  if (type === "batch.validated") {
    state.total = data.total;
    state.startedAt = data.validated_at;
    state.validatedAt = at;  // the chart's first sample: event time, to the fraction
    if (data.models && data.models.length) text("model", data.models.join(", "));
  }
  if (type === "batch.finalizing") state.endedAt = data.finalizing_at;
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
  if (type === "batch.progress" && usage) {
    const done = state.completed + state.failed;
    if (state.samples.length === 0) state.samples.push([state.validatedAt ?? at, 0, 0]);
    chartPoint(at, done, usage.total_tokens);
    state.samples.push([at, done, usage.total_tokens]);
  }
  if (STEP_OF[type]) reach(STEP_OF[type], at);
  if (ENDED.has(state.status)) {
    state.endedAt = state.endedAt ?? at;
    ended(state.status, at);
  }
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
// ends with the terminal event. While it runs, pace and time left move on with the clock.
window.addEventListener("load", () => {
  follow();
  window.setInterval(() => { if (!ENDED.has(state.status)) render(); }, 1000);
});
