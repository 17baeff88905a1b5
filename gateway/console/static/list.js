// The batch list: while a batch on the page can still change, its rows are re-rendered by the
// server every two seconds and swapped in (no reload; the page keeps its scroll and filter).
"use strict";

const REFRESH_MS = 2000;
const ENDED = new Set(["completed", "failed", "cancelled", "expired"]);

function anyActive(rows) {
  return Array.from(rows.querySelectorAll("tr[data-status]")).some(
    (row) => !ENDED.has(row.dataset.status),
  );
}

async function refresh(rows) {
  try {
    const response = await fetch(rows.dataset.refresh, { credentials: "same-origin" });
    if (response.ok) rows.innerHTML = await response.text();
  } catch (error) {
    // The server is restarting or the network blinked: the next round tries again.
  }
}

function start() {
  const rows = document.getElementById("rows");
  if (!rows) return;
  const tick = async () => {
    if (anyActive(rows)) await refresh(rows);
    window.setTimeout(tick, REFRESH_MS);
  };
  window.setTimeout(tick, REFRESH_MS);
}

start();
