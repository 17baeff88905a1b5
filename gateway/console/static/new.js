// Creating a batch from the page: upload the file with the Files API, create the batch with
// the Batches API (the same calls as the SDK), then open the batch page to watch it validate.
"use strict";

const form = document.getElementById("new-batch");
const message = document.getElementById("message");
const api = document.body.dataset.root + "v1/";

function show(text, isError) {
  message.textContent = text;
  message.className = isError ? "error" : "";
}

async function call(path, init) {
  const response = await fetch(api + path, { credentials: "same-origin", ...init });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.error ? body.error.message : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function metadataOf(data) {
  const metadata = { priority: data.get("priority") };
  for (const line of String(data.get("metadata") || "").split("\n")) {
    const at = line.indexOf("=");
    if (line.trim() === "") continue;
    if (at < 1) throw new Error(`Metadata wants key=value lines, not "${line}"`);
    metadata[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return metadata;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const metadata = metadataOf(data);
    show("Uploading…", false);
    const upload = new FormData();
    upload.append("purpose", "batch");
    upload.append("file", data.get("file"));
    const file = await call("files", { method: "POST", body: upload });
    show(`Uploaded ${file.id}; creating the batch…`, false);
    const batch = await call("batches", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        input_file_id: file.id,
        endpoint: data.get("endpoint"),
        completion_window: data.get("completion_window"),
        metadata,
      }),
    });
    window.location.assign(`${document.body.dataset.root}console/batches/${batch.id}`);
  } catch (error) {
    show(error.message, true);
    button.disabled = false;
  }
});
